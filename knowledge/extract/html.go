package extract

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/net/html/charset"
)

// html extracts the main text of an HTML page as Markdown: the <main>
// element, else the element with role="main", else the only <article>, else
// the body; without scripts, styles, navigation, page headers and footers,
// forms, embedded content and hidden elements. The title is the <title>,
// else the first heading.
func (x *Extractor) html(ctx context.Context, name, text string) (*Document, error) {
	if !utf8.ValidString(text) {
		// Not UTF-8: decode the charset the page declares (windows-1252
		// when it declares none, as browsers do).
		enc, _, _ := charset.DetermineEncoding([]byte(text[:min(len(text), 1024)]), "text/html")
		decoded, err := enc.NewDecoder().String(text)
		if err != nil {
			return nil, engine.WrapError(engine.EINVALID, err, "%s: the HTML page's character encoding could not be decoded: save it as UTF-8", name)
		}
		text = decoded
	}
	root, err := parseHTML(ctx, text)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, err
	default: // the parser refuses elements nested over 512 deep
		return nil, engine.WrapError(engine.EINVALID, err, "%s: the HTML page cannot be read: its elements are nested too deeply (over 512 levels); save the page again from a browser", name)
	}
	r := htmlRenderer{ctx: ctx}
	title := collapseSpace(r.text(findFirst(root, isElement(atom.Title))))
	body := findFirst(root, isElement(atom.Body))
	if body == nil {
		body = root
	}
	md := joinBlocks(r.blocks(mainContent(body)))
	if isBlank(md) {
		md = joinBlocks(r.blocks(body))
	}
	if r.err != nil {
		return nil, r.err
	}
	if title == "" {
		title = firstHeading(md)
	}
	return &Document{ContentType: ContentTypeHTML, Title: title, Text: md}, nil
}

// parseHTML parses text, giving up when ctx ends. The parser cannot be
// interrupted, so on a timeout it finishes in the background; its input is
// bounded by the file size cap.
func parseHTML(ctx context.Context, text string) (*html.Node, error) {
	type result struct {
		n   *html.Node
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := html.Parse(strings.NewReader(text))
		done <- result{n, err}
	}()
	select {
	case res := <-done:
		return res.n, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type htmlRenderer struct {
	ctx   context.Context
	steps int
	err   error
}

// tick checks ctx every few thousand nodes; false means stop.
func (r *htmlRenderer) tick() bool {
	if r.err != nil {
		return false
	}
	r.steps++
	if r.steps%4096 == 0 {
		r.err = r.ctx.Err()
	}
	return r.err == nil
}

// flow collects the blocks of a container and the inline text of the
// paragraph being built.
type flow struct {
	blocks []string
	inline strings.Builder
}

// text adds inline text, each run of white space as one space.
func (f *flow) text(s string) {
	if s == "" {
		return
	}
	if isSpace(rune(s[0])) {
		f.inline.WriteByte(' ')
	}
	f.inline.WriteString(collapseSpace(s))
	if r, _ := utf8.DecodeLastRuneInString(s); isSpace(r) {
		f.inline.WriteByte(' ')
	}
}

// flush ends the paragraph being built.
func (f *flow) flush() {
	if p := paragraph(f.inline.String()); p != "" {
		f.blocks = append(f.blocks, p)
	}
	f.inline.Reset()
}

func (f *flow) add(block string) {
	f.flush()
	if strings.TrimSpace(block) != "" {
		f.blocks = append(f.blocks, block)
	}
}

// blocks renders the children of n as Markdown blocks.
func (r *htmlRenderer) blocks(n *html.Node) []string {
	var f flow
	if n != nil {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			r.node(c, &f)
		}
	}
	f.flush()
	return f.blocks
}

// blockTags are elements that start and end a paragraph.
var blockTags = map[atom.Atom]bool{
	atom.Address: true, atom.Article: true, atom.Blockquote: true, atom.Body: true, atom.Caption: true,
	atom.Center: true, atom.Dd: true, atom.Details: true, atom.Dir: true, atom.Div: true, atom.Dl: true,
	atom.Dt: true, atom.Fieldset: true, atom.Figcaption: true, atom.Figure: true, atom.Footer: true,
	atom.Header: true, atom.Hgroup: true, atom.Hr: true, atom.Html: true, atom.Legend: true, atom.Li: true,
	atom.Listing: true, atom.Main: true, atom.Menu: true, atom.Ol: true, atom.P: true, atom.Pre: true,
	atom.Section: true, atom.Summary: true, atom.Table: true, atom.Tbody: true, atom.Td: true,
	atom.Tfoot: true, atom.Th: true, atom.Thead: true, atom.Tr: true, atom.Ul: true, atom.Xmp: true,
	atom.Plaintext: true,
}

// droppedTags never hold main text.
var droppedTags = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Noscript: true, atom.Template: true, atom.Nav: true,
	atom.Aside: true, atom.Form: true, atom.Svg: true, atom.Iframe: true, atom.Object: true,
	atom.Embed: true, atom.Canvas: true, atom.Audio: true, atom.Video: true, atom.Map: true,
	atom.Button: true, atom.Select: true, atom.Textarea: true, atom.Input: true, atom.Dialog: true,
	atom.Head: true, atom.Title: true, atom.Link: true, atom.Meta: true, atom.Img: true, atom.Picture: true,
	atom.Frameset: true, atom.Frame: true,
}

// droppedRoles are ARIA landmarks of page chrome.
var droppedRoles = map[string]bool{
	"navigation": true, "banner": true, "contentinfo": true, "complementary": true, "search": true,
	"dialog": true, "alertdialog": true, "menu": true, "menubar": true, "toolbar": true,
}

// dropped reports whether element n and everything in it is left out.
func dropped(n *html.Node) bool {
	if n.Type != html.ElementNode {
		return false
	}
	if n.Namespace == "svg" || droppedTags[n.DataAtom] && n.Namespace == "" {
		return true
	}
	if hidden(n) {
		return true
	}
	if (n.DataAtom == atom.Header || n.DataAtom == atom.Footer) && !inSection(n) {
		return true // the page's banner and footer, not an article's
	}
	return false
}

// hidden reports whether n is hidden from readers or is page chrome by role.
func hidden(n *html.Node) bool {
	for _, a := range n.Attr {
		v := strings.ToLower(strings.TrimSpace(a.Val))
		switch strings.ToLower(a.Key) {
		case "hidden":
			return true
		case "aria-hidden":
			if v == "true" {
				return true
			}
		case "role":
			if droppedRoles[v] {
				return true
			}
		case "style":
			s := strings.ReplaceAll(v, " ", "")
			if strings.Contains(s, "display:none") || strings.Contains(s, "visibility:hidden") {
				return true
			}
		}
	}
	return false
}

// inSection reports whether n lies in an article, section or main content.
func inSection(n *html.Node) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		if p.Type != html.ElementNode {
			continue
		}
		switch p.DataAtom {
		case atom.Article, atom.Section, atom.Main:
			return true
		case atom.Body:
			return false
		}
		if attr(p, "role") == "main" {
			return true
		}
	}
	return false
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if strings.EqualFold(a.Key, key) {
			return strings.ToLower(strings.TrimSpace(a.Val))
		}
	}
	return ""
}

func (r *htmlRenderer) node(n *html.Node, f *flow) {
	if !r.tick() {
		return
	}
	switch n.Type {
	case html.TextNode:
		f.text(n.Data)
		return
	case html.ElementNode:
	default:
		return
	}
	if dropped(n) {
		return
	}
	switch n.DataAtom {
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		f.add(heading(int(n.Data[1]-'0'), r.text(n)))
	case atom.Br:
		f.inline.WriteByte('\n')
	case atom.Hr:
		f.flush()
	case atom.Pre, atom.Listing, atom.Xmp, atom.Plaintext:
		f.add(codeBlock(r.text(n), codeLanguage(n)))
	case atom.Code, atom.Kbd, atom.Samp, atom.Tt:
		f.inline.WriteString(codeSpan(collapseSpace(r.text(n))))
	case atom.Ul, atom.Ol, atom.Menu, atom.Dir:
		f.add(r.list(n))
	case atom.Li:
		f.add(r.listItem(n, "- "))
	case atom.Table:
		f.flush()
		for _, b := range r.table(n) {
			f.add(b)
		}
	case atom.Blockquote:
		f.add(quote(joinBlocks(r.blocks(n))))
	case atom.Dt:
		f.flush()
		f.add(paragraph(r.text(n)))
	default:
		if blockTags[n.DataAtom] {
			f.flush()
			for _, b := range r.blocks(n) {
				f.add(b)
			}
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			r.node(c, f)
		}
	}
}

// codeSpan wraps s in enough backticks.
func codeSpan(s string) string {
	if s == "" {
		return ""
	}
	ticks := "`"
	for strings.Contains(s, ticks) {
		ticks += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return ticks + s + ticks
}

// codeLanguage reads "language-go" or "lang-go" from the class of a pre
// element or its code child.
func codeLanguage(n *html.Node) string {
	for _, el := range []*html.Node{n, findFirst(n, isElement(atom.Code))} {
		if el == nil {
			continue
		}
		for c := range strings.FieldsSeq(attr(el, "class")) {
			for _, p := range []string{"language-", "lang-"} {
				if l, ok := strings.CutPrefix(c, p); ok && l != "" {
					return l
				}
			}
		}
	}
	return ""
}

// list renders ul and ol, nested lists indented under their items.
func (r *htmlRenderer) list(n *html.Node) string {
	ordered := n.DataAtom == atom.Ol
	num := 1
	if s, err := strconv.Atoi(attr(n, "start")); err == nil && s >= 0 && s < 1e9 {
		num = s
	}
	var items []string
	width := 2     // of the last item's marker
	var stray flow // content directly inside the list, outside any li
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		switch {
		case c.Type == html.ElementNode && c.DataAtom == atom.Li:
			if dropped(c) {
				continue
			}
			marker := "- "
			if ordered {
				marker = strconv.Itoa(num) + ". "
				num++
			}
			if item := r.listItem(c, marker); item != "" {
				items = append(items, item)
				width = len(marker)
			}
			continue
		case len(items) > 0 && c.Type == html.ElementNode && (c.DataAtom == atom.Ul || c.DataAtom == atom.Ol) && !dropped(c):
			// <ul><li>a</li><ul>...</ul></ul>: nest under the item before.
			if sub := r.list(c); sub != "" {
				pad := strings.Repeat(" ", width)
				items[len(items)-1] += "\n" + indent(sub, pad, pad)
			}
			continue
		}
		r.node(c, &stray)
		stray.flush()
		for _, b := range stray.blocks {
			items = append(items, indent(b, "- ", "  "))
			width = 2
		}
		stray.blocks = nil
	}
	return strings.Join(items, "\n")
}

// listItem renders one li behind marker; its later lines are indented to
// the marker's width, and a nested list follows its text without a blank line.
func (r *htmlRenderer) listItem(n *html.Node, marker string) string {
	blocks := r.blocks(n)
	if len(blocks) == 0 {
		return ""
	}
	var sb strings.Builder
	for i, b := range blocks {
		if i > 0 {
			if listBlock.MatchString(b) {
				sb.WriteString("\n")
			} else {
				sb.WriteString("\n\n")
			}
		}
		sb.WriteString(b)
	}
	return indent(sb.String(), marker, strings.Repeat(" ", len(marker)))
}

// table renders a data table as a Markdown table. A layout table (one
// column, nested tables, or cells holding several blocks, headings or
// code) is rendered as the blocks of its cells instead.
func (r *htmlRenderer) table(n *html.Node) []string {
	var caption []string
	var rows [][][]string // row, cell, blocks
	layout := false
	var addRows func(parent *html.Node)
	addRows = func(parent *html.Node) {
		for c := parent.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode || dropped(c) {
				continue
			}
			switch c.DataAtom {
			case atom.Caption:
				caption = append(caption, r.blocks(c)...)
			case atom.Thead, atom.Tbody, atom.Tfoot:
				addRows(c)
			case atom.Tr:
				var row [][]string
				for cell := c.FirstChild; cell != nil; cell = cell.NextSibling {
					if cell.Type != html.ElementNode || (cell.DataAtom != atom.Td && cell.DataAtom != atom.Th) || dropped(cell) {
						continue
					}
					if findFirst(cell, isElement(atom.Table)) != nil {
						layout = true
					}
					blocks := r.blocks(cell)
					if len(blocks) > 1 || len(blocks) == 1 && (strings.HasPrefix(blocks[0], "#") || strings.HasPrefix(blocks[0], "```")) {
						layout = true
					}
					row = append(row, blocks)
					if span, err := strconv.Atoi(attr(cell, "colspan")); err == nil && span > 1 {
						for range min(span, 100) - 1 {
							row = append(row, nil)
						}
					}
				}
				if len(row) > 0 {
					rows = append(rows, row)
				}
			}
		}
	}
	addRows(n)
	return append(caption, renderTable(rows, layout)...)
}

// text is the visible text of n: dropped elements left out, <br> as a line
// break, other white space as written. It walks iteratively, so any depth
// is safe.
func (r *htmlRenderer) text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var sb strings.Builder
	stack := []*html.Node{n}
	for len(stack) > 0 && r.tick() {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch {
		case c.Type == html.TextNode:
			sb.WriteString(c.Data)
			continue
		case c.Type == html.ElementNode && c.DataAtom == atom.Br:
			sb.WriteByte('\n')
			continue
		case c != n && dropped(c):
			continue
		case c.Type == html.ElementNode && blockTags[c.DataAtom] && c != n:
			sb.WriteByte(' ')
		}
		for k := c.LastChild; k != nil; k = k.PrevSibling {
			stack = append(stack, k)
		}
	}
	return sb.String()
}

func isElement(a atom.Atom) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Type == html.ElementNode && n.DataAtom == a }
}

// findFirst returns the first node under n (n included), in document
// order, that match reports true for; it does not look inside dropped
// elements other than the title.
func findFirst(n *html.Node, match func(*html.Node) bool) *html.Node {
	if n == nil {
		return nil
	}
	stack := []*html.Node{n}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if match(c) {
			return c
		}
		if c != n && dropped(c) && c.DataAtom != atom.Head {
			continue
		}
		for k := c.LastChild; k != nil; k = k.PrevSibling {
			stack = append(stack, k)
		}
	}
	return nil
}

// mainContent picks the element holding the page's main text: <main>, an
// element with role="main", the only top-level <article>, else body.
func mainContent(body *html.Node) *html.Node {
	visible := func(n *html.Node) bool { return !hidden(n) }
	if m := findFirst(body, func(n *html.Node) bool { return isElement(atom.Main)(n) && visible(n) }); m != nil {
		return m
	}
	if m := findFirst(body, func(n *html.Node) bool {
		return n.Type == html.ElementNode && attr(n, "role") == "main" && visible(n)
	}); m != nil {
		return m
	}
	var articles []*html.Node
	stack := []*html.Node{body}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if isElement(atom.Article)(c) && visible(c) {
			articles = append(articles, c)
			continue // an article's inner articles (comments) are part of it
		}
		if c != body && dropped(c) {
			continue
		}
		for k := c.LastChild; k != nil; k = k.PrevSibling {
			stack = append(stack, k)
		}
	}
	if len(articles) == 1 {
		return articles[0]
	}
	return body
}
