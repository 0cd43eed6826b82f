package extract_test

import (
	"context"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge/extract"
)

const htmlPage = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Deploying ConvoSphere &mdash; Docs</title>
  <style>body { color: red }</style>
  <script>var secret = "script text";</script>
</head>
<body>
  <header><a href="/">Home</a> <span>Site banner</span></header>
  <nav><ul><li><a href="/a">Nav link</a></li></ul></nav>
  <div class="layout">
    <aside>Sidebar ad</aside>
    <main>
      <article>
        <header><h1>Deploying   ConvoSphere</h1></header>
        <p>Install the <code>convosphere</code> binary, then
           read <a href="/config">the configuration&nbsp;guide</a>.<br>A second line.</p>
        <p hidden>Hidden paragraph</p>
        <p style="display: none">Invisible paragraph</p>
        <div aria-hidden="true">Decoration</div>
        <h2>Steps</h2>
        <ol start="3">
          <li>Download</li>
          <li>Configure
            <ul><li>the <b>token</b></li><li>the channel</li></ul>
          </li>
          <li><p>Run it</p><p>and watch the logs.</p></li>
        </ol>
        <h3>Example</h3>
        <pre><code class="language-sh">convosphere serve \
  --port 8080
echo "` + "```" + `"</code></pre>
        <blockquote><p>Back up first.</p><ul><li>really</li></ul></blockquote>
        <table>
          <caption>Settings</caption>
          <thead><tr><th>Name</th><th>Default</th></tr></thead>
          <tbody>
            <tr><td>port</td><td>8080</td></tr>
            <tr><td>mode | kind</td><td><p>auto</p></td></tr>
            <tr><td colspan="2">all of them</td></tr>
          </tbody>
        </table>
        <p>1. Not a list &amp; # not a heading</p>
        <form><input value="search"><button>Go</button></form>
        <footer>Article footer kept</footer>
        <svg><text>svg text</text></svg>
        <noscript>Enable JavaScript</noscript>
        <template><p>template text</p></template>
        <iframe src="x">iframe text</iframe>
      </article>
    </main>
  </div>
  <footer>Copyright footer</footer>
</body>
</html>`

const htmlWant = "# Deploying ConvoSphere\n\n" +
	"Install the `convosphere` binary, then read the configuration guide.\nA second line.\n\n" +
	"## Steps\n\n" +
	"3. Download\n4. Configure\n   - the token\n   - the channel\n5. Run it\n\n   and watch the logs.\n\n" +
	"### Example\n\n" +
	"````sh\nconvosphere serve \\\n  --port 8080\necho \"```\"\n````\n\n" +
	"> Back up first.\n>\n> - really\n\n" +
	"Settings\n\n" +
	"| Name | Default |\n| --- | --- |\n| port | 8080 |\n| mode \\| kind | auto |\n| all of them |  |\n\n" +
	"1\\. Not a list & # not a heading\n\n" +
	"Article footer kept"

func TestExtractHTML(t *testing.T) {
	x := MustExtractor(t, extract.Config{})
	tests := []struct {
		name, file, html string
		title, text      string
	}{
		{"structured page", "deploy.html", htmlPage, "Deploying ConvoSphere — Docs", htmlWant},
		{"mislabelled as pdf", "report.pdf", "<html><body><h1>Report</h1><p>Numbers.</p></body></html>", "Report", "# Report\n\nNumbers."},
		{"role main preferred over chrome", "p.html", `<html><body><div role="banner">Banner</div><div role="main"><header><h2>Intro</h2></header><p>Body text.</p></div><div role="navigation">Links</div></body></html>`, "Intro", "## Intro\n\nBody text."},
		{"single article", "a.html", `<html><body><div>Site chrome text</div><article><h1>Post</h1><p>Post body.</p><article><p>A comment.</p></article></article></body></html>`, "Post", "# Post\n\nPost body.\n\nA comment."},
		{"several articles: whole body", "list.html", `<html><body><article><h2>One</h2></article><article><h2>Two</h2></article></body></html>`, "One", "## One\n\n## Two"},
		{"empty main falls back to body", "spa.html", `<html><body><main></main><p>Rendered elsewhere.</p></body></html>`, "", "Rendered elsewhere."},
		{"hidden main skipped", "h.html", `<html><body><main hidden><p>old</p></main><main><p>current</p></main></body></html>`, "", "current"},
		{"fragment", "frag", `<p>Hello <em>there</em>, <strong>friend</strong>.</p><ul><li>a</li><li>b</li></ul>`, "", "Hello there, friend.\n\n- a\n- b"},
		{"layout table", "old.html", `<html><body><table><tr><td><h1>Old site</h1><p>Welcome.</p></td><td><p>Right column.</p></td></tr></table></body></html>`, "Old site", "# Old site\n\nWelcome.\n\nRight column."},
		{"one-column table", "t.html", `<html><body><table><tr><td>only</td></tr><tr><td>cells</td></tr></table></body></html>`, "", "only\n\ncells"},
		{"list nested without li", "n.html", `<html><body><ol><li>one</li><ul><li>sub</li></ul><li>two</li></ol></body></html>`, "", "1. one\n   - sub\n2. two"},
		{"definition list", "dl.html", `<html><body><dl><dt>Term</dt><dd>Meaning of it.</dd></dl></body></html>`, "", "Term\n\nMeaning of it."},
		{"latin-1 page", "old.html", "<html><head><meta charset=\"iso-8859-1\"><title>Caf\xe9</title></head><body><p>Cr\xe8me br\xfbl\xe9e</p></body></html>", "Café", "Crème brûlée"},
		{"heading ending in hash", "c.html", `<html><body><h2>Learn C #</h2><p>x</p></body></html>`, "Learn C #", "## Learn C # #\n\nx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := MustExtract(t, x, tt.file, []byte(tt.html))
			if doc.ContentType != extract.ContentTypeHTML {
				t.Errorf("content type %q", doc.ContentType)
			}
			if doc.Title != tt.title {
				t.Errorf("title %q; want %q", doc.Title, tt.title)
			}
			if doc.Text != tt.text {
				t.Errorf("text:\n%s\n--- want:\n%s", doc.Text, tt.text)
			}
			for _, leak := range []string{"script text", "color: red", "Nav link", "Site banner", "Sidebar ad", "Hidden paragraph", "Invisible", "Decoration", "search", "svg text", "Enable JavaScript", "template text", "iframe text", "Copyright footer"} {
				if strings.Contains(doc.Text, leak) {
					t.Errorf("text holds %q, which should have been dropped", leak)
				}
			}
		})
	}
}

// TestExtractHTMLDeepNesting checks that deeply nested pages are read up
// to the HTML parser's limit and refused clearly past it.
func TestExtractHTMLDeepNesting(t *testing.T) {
	x := MustExtractor(t, extract.Config{})
	nested := func(depth int) []byte {
		return []byte("<html><body>" + strings.Repeat("<div><span>", depth) + "deep text" + strings.Repeat("</span></div>", depth) + "<p>after</p></body></html>")
	}
	doc := MustExtract(t, x, "deep.html", nested(200))
	if doc.Text != "deep text\n\nafter" {
		t.Errorf("text %q", doc.Text)
	}
	_, err := x.Extract(context.Background(), "deeper.html", nested(100_000))
	assertError(t, err, engine.EINVALID, "deeper.html", "nested too deeply")
}
