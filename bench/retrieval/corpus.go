package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// corpusVersion changes whenever the way pages are rendered or split
// changes, so that an old cache is rebuilt rather than trusted.
const corpusVersion = 2

// sources are the Debian packages and man sections the corpus is built from.
var sources = []struct {
	pkg      string
	sections []string
}{
	{"coreutils", []string{"1"}},
	{"manpages", []string{"4", "5", "7"}},
}

// Page is one real man page: its NAME section split off as the query, the
// rest of the rendered page as the document.
type Page struct {
	Doc         string   `json:"doc"`     // document name, e.g. "cp.1"
	Package     string   `json:"package"` // Debian package that ships it
	File        string   `json:"file"`    // the page's file
	Names       []string `json:"names"`   // the names before the dash in NAME
	Description string   `json:"description"`
	Text        string   `json:"text"` // rendered page without its NAME section
}

// Corpus is the rendered man pages plus what they were built from, so a
// cache can tell whether it is still current.
type Corpus struct {
	Version  int               `json:"version"`
	Packages map[string]string `json:"packages"` // package -> version
	Renderer string            `json:"renderer"`
	Pages    []Page            `json:"pages"`
	Skipped  Skipped           `json:"skipped"`
}

// Skipped counts the files of the sections that are not documents.
type Skipped struct {
	Symlinks int      `json:"symlinks"`
	SoStubs  int      `json:"so_stubs"`
	NoName   []string `json:"no_name,omitempty"` // pages without a parsable NAME section
}

// Query is a known-item query: a NAME description and every page that has it.
type Query struct {
	Text    string   `json:"text"`
	Answers []string `json:"answers"` // document names
}

// renderer is how pages become text; it is recorded in the cache and the report.
// Hyphenation is off (-rHY=0): groff would otherwise break words at line
// ends, in the NAME descriptions too ("cur‐ rent host").
const renderer = "LC_ALL=C.UTF-8 MANWIDTH=80 MANROFFOPT=-rHY=0 man -l FILE | col -bx"

// Queries groups the pages by description (compared case- and
// space-insensitively); pages sharing one all answer its query. The order
// is that of the first page with each description.
func (c *Corpus) Queries() []Query {
	var out []Query
	index := map[string]int{}
	for _, p := range c.Pages {
		key := strings.ToLower(strings.Join(strings.Fields(p.Description), " "))
		if i, ok := index[key]; ok {
			out[i].Answers = append(out[i].Answers, p.Doc)
			continue
		}
		index[key] = len(out)
		out = append(out, Query{Text: p.Description, Answers: []string{p.Doc}})
	}
	return out
}

// LoadCorpus returns the corpus cached in dir when it matches the installed
// packages, else builds it (rendering every page) and caches it.
func LoadCorpus(ctx context.Context, dir string, logf func(string, ...any)) (*Corpus, error) {
	versions, err := packageVersions(ctx)
	if err != nil {
		return nil, err
	}
	cache := filepath.Join(dir, "manpages.json")
	if b, err := os.ReadFile(cache); err == nil {
		var c Corpus
		if json.Unmarshal(b, &c) == nil && c.Version == corpusVersion && c.Renderer == renderer &&
			mapsEqual(c.Packages, versions) && len(c.Pages) > 0 {
			logf("corpus: %d pages from cache %s", len(c.Pages), cache)
			return &c, nil
		}
	}
	if err := checkTools(); err != nil {
		return nil, err
	}
	logf("corpus: rendering man pages (cached in %s afterwards)", cache)
	c, err := buildCorpus(ctx, versions)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("corpus cache: %w", err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	tmp := cache + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return nil, fmt.Errorf("corpus cache: %w", err)
	}
	if err := os.Rename(tmp, cache); err != nil {
		return nil, fmt.Errorf("corpus cache: %w", err)
	}
	logf("corpus: %d pages rendered (%d symlinks and %d .so stubs skipped)", len(c.Pages), c.Skipped.Symlinks, c.Skipped.SoStubs)
	return c, nil
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkTools fails with what to install when a rendering tool is missing.
func checkTools() error {
	var missing []string
	for _, t := range []struct{ bin, pkg string }{{"man", "man-db"}, {"groff", "groff-base"}, {"col", "bsdextrautils"}} {
		if _, err := exec.LookPath(t.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", t.bin, t.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("corpus: cannot render man pages: %s not found: apt-get install man-db groff-base bsdextrautils", strings.Join(missing, ", "))
	}
	return nil
}

// packageVersions asks dpkg for the installed version of each source package.
func packageVersions(ctx context.Context) (map[string]string, error) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		return nil, errors.New("corpus: dpkg-query not found: the man-page corpus needs a Debian system with coreutils and manpages installed")
	}
	out := map[string]string{}
	for _, s := range sources {
		b, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Status}\t${Version}", s.pkg).Output()
		status, version, _ := strings.Cut(string(b), "\t")
		if err != nil || !strings.HasSuffix(status, " installed") {
			return nil, fmt.Errorf("corpus: Debian package %s is not installed: apt-get install %s", s.pkg, s.pkg)
		}
		out[s.pkg] = version
	}
	return out, nil
}

// pageFile is a man page file that a package ships.
type pageFile struct {
	pkg, path string
}

// listPages lists the files of the wanted sections that each package
// ships, with `dpkg -L`.
func listPages(ctx context.Context) ([]pageFile, error) {
	var files []pageFile
	for _, s := range sources {
		out, err := exec.CommandContext(ctx, "dpkg", "-L", s.pkg).Output()
		if err != nil {
			return nil, fmt.Errorf("corpus: dpkg -L %s: %w", s.pkg, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			dir, base := filepath.Split(strings.TrimSpace(line))
			for _, sec := range s.sections {
				if dir == "/usr/share/man/man"+sec+"/" && base != "" {
					files = append(files, pageFile{s.pkg, filepath.Join(dir, base)})
				}
			}
		}
	}
	if len(files) == 0 {
		return nil, errors.New("corpus: the packages list no man pages: is /usr/share/man excluded by dpkg (path-exclude in /etc/dpkg/dpkg.cfg.d)? reinstall coreutils and manpages without it")
	}
	return files, nil
}

// buildCorpus renders every real page, two at a time.
func buildCorpus(ctx context.Context, versions map[string]string) (*Corpus, error) {
	files, err := listPages(ctx)
	if err != nil {
		return nil, err
	}
	c := &Corpus{Version: corpusVersion, Packages: versions, Renderer: renderer}
	var real []pageFile
	for _, f := range files {
		fi, err := os.Lstat(f.path)
		switch {
		case err != nil:
			return nil, fmt.Errorf("corpus: %w (the package lists it: reinstall %s)", err, f.pkg)
		case fi.Mode()&os.ModeSymlink != 0:
			c.Skipped.Symlinks++
			continue
		case !fi.Mode().IsRegular():
			continue
		}
		src, err := readPage(f.path)
		if err != nil {
			return nil, err
		}
		if isSoStub(src) {
			c.Skipped.SoStubs++
			continue
		}
		real = append(real, f)
	}
	pages := make([]*Page, len(real))
	errs := make([]error, len(real))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, f := range real {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			text, err := renderPage(ctx, f.path)
			if err != nil {
				errs[i] = err
				return
			}
			p, ok := SplitName(text)
			if !ok {
				return
			}
			p.Doc, p.Package, p.File = docName(f.path), f.pkg, f.path
			pages[i] = &p
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, p := range pages {
		if p == nil {
			c.Skipped.NoName = append(c.Skipped.NoName, docName(real[i].path))
			continue
		}
		c.Pages = append(c.Pages, *p)
	}
	slices.SortFunc(c.Pages, func(a, b Page) int { return strings.Compare(a.Doc, b.Doc) })
	return c, nil
}

// docName is the page's file name without the compression suffix: "cp.1".
func docName(path string) string {
	return strings.TrimSuffix(filepath.Base(path), ".gz")
}

// readPage reads a page's roff source, gunzipping it when needed.
func readPage(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		return b, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("corpus: %s: %w", path, err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("corpus: %s: %w", path, err)
	}
	return out, nil
}

// isSoStub reports whether a roff source only includes another page: its
// first line that is not a comment starts with ".so".
func isSoStub(src []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line == "." || strings.HasPrefix(line, `.\"`) || strings.HasPrefix(line, `'\"`) ||
			strings.HasPrefix(line, `\"`) || strings.HasPrefix(line, `.\#`) {
			continue
		}
		return strings.HasPrefix(line, ".so ") || line == ".so"
	}
	return false
}

// renderPage renders a page to plain text: man(1) formats it for an
// 80-column terminal without hyphenation, and col(1) removes the
// overstrikes that make bold and underline, and turns tabs into spaces.
func renderPage(ctx context.Context, path string) (string, error) {
	env := append(os.Environ(), "LC_ALL=C.UTF-8", "MANWIDTH=80", "MANROFFOPT=-rHY=0", "MAN_KEEP_FORMATTING=", "MANPAGER=cat", "PAGER=cat")
	man := exec.CommandContext(ctx, "man", "-l", path)
	man.Env = env
	col := exec.CommandContext(ctx, "col", "-bx")
	col.Env = env
	pipe, err := man.StdoutPipe()
	if err != nil {
		return "", err
	}
	col.Stdin = pipe
	var out, manErr, colErr bytes.Buffer
	col.Stdout, col.Stderr, man.Stderr = &out, &colErr, &manErr
	if err := col.Start(); err != nil {
		return "", fmt.Errorf("corpus: col: %w", err)
	}
	if err := man.Run(); err != nil {
		_ = col.Wait()
		return "", fmt.Errorf("corpus: man -l %s: %w: %s", path, err, strings.TrimSpace(manErr.String()))
	}
	if err := col.Wait(); err != nil {
		return "", fmt.Errorf("corpus: col -bx on %s: %w: %s", path, err, strings.TrimSpace(colErr.String()))
	}
	return out.String(), nil
}

// dashes separate the names from the description in a NAME section:
// "cp - copy files", and the forms other renderers produce.
var dashes = []string{" - ", " \u2014 ", " \u2212 ", " \u2010 ", " \u2013 "}

// SplitName finds the NAME section of a rendered page, parses it into names
// and description, and returns the page without that section. ok is false
// when the page has no NAME section with a dash.
func SplitName(text string) (p Page, ok bool) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " \t")
	}
	start := slices.IndexFunc(lines, func(l string) bool { return l == "NAME" })
	if start < 0 {
		return Page{}, false
	}
	end := start + 1
	for end < len(lines) && (lines[end] == "" || lines[end][0] == ' ') {
		end++
	}
	// The section's blank lines before the next heading stay with the rest.
	name := strings.Join(strings.Fields(strings.Join(lines[start+1:end], " ")), " ")
	var names, desc string
	for _, d := range dashes {
		if n, de, found := strings.Cut(name, d); found {
			names, desc = n, de
			break
		}
	}
	desc = strings.TrimSpace(desc)
	if desc == "" {
		return Page{}, false
	}
	for n := range strings.SplitSeq(names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			p.Names = append(p.Names, n)
		}
	}
	p.Description = desc
	rest := slices.Concat(lines[:start], lines[end:])
	p.Text = strings.TrimSpace(strings.Join(rest, "\n")) + "\n"
	return p, true
}
