package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/chromedp"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

// postAssistantPage posts a form as c's browser session (cookie only: the
// CSRF token, when wanted, is a form field).
func (e *testEnv) postAssistantPage(path string, form url.Values, c *client) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c != nil && c.session != nil {
		r.AddCookie(c.session)
	}
	return e.serve(r)
}

// assistantFormOf is a valid form for c: every field, with its CSRF token.
func assistantFormOf(c *client, kv ...string) url.Values {
	f := url.Values{
		"csrf":                {c.csrf},
		"name":                {"Ops Team"},
		"description":         {"Runs things"},
		"system_prompt":       {"Be careful.\r\nAsk before acting."},
		"model":               {"gpt-test"},
		"temperature":         {"0.3"},
		"max_output_tokens":   {"800"},
		"knowledge_bases":     {"handbook"},
		"binding_platform":    {"slack", "discord", ""},
		"binding_channel":     {"C1", "@dm", ""},
		"binding_trigger":     {"mention", "all", "thread"},
		"retrieval.limit":     {"8"},
		"retrieval.mode":      {"hybrid"},
		"retrieval.fusion":    {"alpha"},
		"retrieval.alpha":     {"0.7"},
		"retrieval.rrf_k":     {""},
		"retrieval.min_score": {"0.2"},
		"retrieval.rerank":    {"1"},
		"is_default":          {"1"},
	}
	return setFields(f, kv...)
}

// setFields sets fields of a form: "\x00delete" deletes one, a binding
// field sets the first row's.
func setFields(f url.Values, kv ...string) url.Values {
	for i := 0; i+1 < len(kv); i += 2 {
		switch {
		case kv[i+1] == "\x00delete":
			f.Del(kv[i])
		case strings.HasPrefix(kv[i], "binding_"):
			f[kv[i]][0] = kv[i+1] // the first row
		default:
			f.Set(kv[i], kv[i+1])
		}
	}
	return f
}

// withAdminTools adds the admin-only tool fields to a form.
func withAdminTools(f url.Values) url.Values {
	f["tools"] = []string{"files__read", "builtin__current_time"}
	f.Set("tool_policy.files__read", "ask")
	f.Set("tool_policy.builtin__current_time", "allow")
	f.Set("tool_policy.files__write", "deny") // not ticked: ignored
	f.Set("tools_other", "web__fetch deny\r\nmail__send")
	return f
}

func mustKB(t *testing.T, env *testEnv, name, description string) {
	t.Helper()
	if err := env.store.CreateKnowledgeBase(context.Background(), &engine.KnowledgeBase{Name: name, Description: description}); err != nil {
		t.Fatal(err)
	}
}

func mustStoredAssistant(t *testing.T, env *testEnv, name string) *engine.Assistant {
	t.Helper()
	a, err := env.store.AssistantByName(context.Background(), name)
	if err != nil {
		t.Fatalf("assistant %q: %v", name, err)
	}
	return a
}

func textSel(doc *goquery.Document, sel string) string {
	return strings.Join(strings.Fields(doc.Find(sel).Text()), " ")
}

func valueSel(doc *goquery.Document, sel string) string {
	v, _ := doc.Find(sel).Attr("value")
	return v
}

func TestAssistantsPageList(t *testing.T) {
	env := mustEnv(t, envOptions{})
	ctx := context.Background()
	alpha := 0.25
	a := &engine.Assistant{Name: "Ops Team", Description: "Runs " + xss, SystemPrompt: "Say <b>hi</b> " + xss,
		Model: "gpt-" + xss, Temperature: 0.4, MaxOutputTokens: 900, KnowledgeBases: []string{"handbook", "kb-" + xss},
		Tools:      []string{"files__read", "files__write", "evil__" + xss},
		ToolPolicy: map[string]engine.ToolMode{"files__write": engine.ToolAsk, "evil__" + xss: engine.ToolDeny},
		Bindings: []engine.Binding{{Platform: engine.PlatformSlack, ChannelID: "C-" + xss, Trigger: engine.TriggerMention},
			{Platform: engine.PlatformDiscord, ChannelID: engine.ChannelAnyDM}, {Platform: engine.PlatformMattermost, ChannelID: engine.ChannelAnywhere, Trigger: engine.TriggerAll}},
		Retrieval: engine.RetrievalSettings{Limit: 7, Fusion: engine.FusionAlpha, Alpha: &alpha, Rerank: true}, IsDefault: true}
	if err := env.store.CreateAssistant(ctx, a); err != nil {
		t.Fatal(err)
	}
	env.MustAssistant("zeta", false)
	viewer := env.MustSession(env.MustUser("vera", engine.RoleViewer))
	editor := env.MustSession(env.MustUser("eddie", engine.RoleEditor))

	w := env.get("/assistants", viewer)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	body := w.Body.String()
	if strings.Contains(body, xss) || strings.Contains(body, "<b>hi</b>") {
		t.Fatal("a payload reached the page unescaped")
	}
	doc := mustDoc(t, w.Body.Bytes())
	if doc.Find(`a[href="/assistants"][aria-current=page]`).Length() != 1 {
		t.Error("the navigation does not mark the page")
	}
	cards := doc.Find("li.assistant-card")
	if cards.Length() != 2 {
		t.Fatalf("cards: %d", cards.Length())
	}
	card := doc.Find(`li.assistant-card#assistant-` + a.ID)
	check := func(sel, want string) {
		t.Helper()
		if got := strings.Join(strings.Fields(card.Find(sel).Text()), " "); got != want {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	check(".assistant-name", "Ops Team")
	check(".assistant-default", "default")
	check(".assistant-description", "Runs "+xss)
	check(".assistant-model", "gpt-"+xss)
	check(".assistant-temperature", "0.4")
	check(".assistant-max-tokens", "900")
	if kbs := card.Find(".assistant-kb").Map(func(_ int, s *goquery.Selection) string { return s.Text() }); !slices.Equal(kbs, []string{"handbook", "kb-" + xss}) {
		t.Errorf("knowledge bases %q", kbs)
	}
	check(".assistant-retrieval", "7 passages, hybrid, alpha 0.25 fusion, reranked")
	check(".assistant-system-prompt", "Say <b>hi</b> "+xss)
	var tools []string
	card.Find(".assistant-tool").Each(func(_ int, s *goquery.Selection) {
		name, _ := s.Attr("data-tool")
		mode, _ := s.Attr("data-mode")
		tools = append(tools, name+"="+mode+":"+strings.Join(strings.Fields(s.Text()), " "))
	})
	if want := []string{"files__read=allow:files__read allow", "files__write=ask:files__write ask", "evil__" + xss + "=deny:evil__" + xss + " deny"}; !slices.Equal(tools, want) {
		t.Errorf("tools %q", tools)
	}
	var bindings []string
	card.Find(".assistant-binding").Each(func(_ int, s *goquery.Selection) {
		bindings = append(bindings, strings.Join(strings.Fields(s.Text()), " "))
	})
	if want := []string{
		"discord: every direct message · answers mentions and its threads (thread, the default)",
		"mattermost: every channel · answers every message (all)",
		"slack: C-" + xss + " · answers mentions only (mention)",
	}; !slices.Equal(bindings, want) {
		t.Errorf("bindings %q", bindings)
	}
	if href, _ := card.Find(`a[href^="/playground"]`).Attr("href"); href != "/playground?assistant=Ops%20Team" {
		t.Errorf("playground link %q", href)
	}
	// A viewer gets no edit controls.
	if n := doc.Find(`a[href="/assistants/new"], a[href$="/edit"], .assistant-delete, form[action*="/delete"], dialog`).Length(); n != 0 {
		t.Errorf("a viewer sees %d edit controls", n)
	}
	// Only the page's own script and style: no inline script or style.
	if doc.Find("script:not([src])").Length() != 0 || doc.Find("[style]").Length() != 0 {
		t.Error("inline script or style")
	}
	if doc.Find(`script[src^="/static/assistants.js?v="]`).Length() != 1 || doc.Find(`link[href^="/static/assistants.css?v="]`).Length() != 1 {
		t.Error("the page's script or stylesheet is missing")
	}

	// Editors get them.
	doc = mustDoc(t, env.get("/assistants", editor).Body.Bytes())
	if doc.Find(`a#new-assistant[href="/assistants/new"]`).Length() != 1 ||
		doc.Find(`a[href="/assistants/`+a.ID+`/edit"]`).Length() != 1 ||
		doc.Find(`a.assistant-delete[data-delete-action="/assistants/`+a.ID+`/delete"][data-delete-name="Ops Team"]`).Length() != 1 {
		t.Error("an editor lacks the edit controls")
	}
	if v := valueSel(doc, `dialog#delete-dialog form input[name=csrf]`); v != editor.csrf {
		t.Error("the delete dialog's form lacks the CSRF token")
	}
}

func TestAssistantsPageEmpty(t *testing.T) {
	env := mustEnv(t, envOptions{})
	for _, tc := range []struct {
		role engine.Role
		link bool
	}{{engine.RoleViewer, false}, {engine.RoleEditor, true}, {engine.RoleAdmin, true}} {
		c := env.MustSession(env.MustUser("u-"+string(tc.role), tc.role))
		doc := mustDoc(t, env.get("/assistants", c).Body.Bytes())
		if !strings.Contains(textSel(doc, "#assistants-empty"), "No assistant yet") {
			t.Errorf("%s: no empty state", tc.role)
		}
		if got := doc.Find(`#assistants-empty a[href="/assistants/new"]`).Length() == 1; got != tc.link {
			t.Errorf("%s: create link %v", tc.role, got)
		}
	}
}

func TestAssistantNewForm(t *testing.T) {
	inv := inventory()
	env := mustEnv(t, envOptions{Inventory: inv})
	mustKB(t, env, "handbook", "The staff handbook")
	mustKB(t, env, "faq", "")
	admin := env.MustSession(env.MustUser("ada", engine.RoleAdmin))

	w := env.get("/assistants/new", admin)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), xss) {
		t.Fatal("a tool name reached the page unescaped")
	}
	doc := mustDoc(t, w.Body.Bytes())
	form := doc.Find(`form#assistant-form[method=post][action="/assistants"]`)
	if form.Length() != 1 {
		t.Fatal("no form posting to /assistants")
	}
	if v := valueSel(doc, `form#assistant-form input[type=hidden][name=csrf]`); v != admin.csrf {
		t.Fatal("the form lacks the CSRF token")
	}
	for _, sel := range []string{
		`input[name=name][required]`, `input[name=description]`, `textarea[name=system_prompt]`, `input[name=model]`,
		`input[name=temperature][type=number]`, `input[name=max_output_tokens]`, `input[type=checkbox][name=is_default]`,
		`textarea[name=tools_other]`, `select[name="binding_platform"]`, `input[name="binding_channel"]`, `select[name="binding_trigger"]`,
		`input[name="retrieval.limit"]`, `select[name="retrieval.mode"]`, `select[name="retrieval.fusion"]`, `input[name="retrieval.alpha"]`,
		`input[name="retrieval.rrf_k"]`, `input[name="retrieval.min_score"]`, `input[type=checkbox][name="retrieval.rerank"]`,
	} {
		if n := form.Find(sel).Length(); n != 1 {
			t.Errorf("%s: %d", sel, n)
		}
	}
	// Every input is labelled.
	form.Find("input:not([type=hidden]), select, textarea").Each(func(_ int, s *goquery.Selection) {
		id, _ := s.Attr("id")
		if id == "" || doc.Find(`label[for="`+id+`"]`).Length() != 1 {
			name, _ := s.Attr("name")
			t.Errorf("field %q (id %q) has no label", name, id)
		}
	})
	var kbs []string
	form.Find(`input[type=checkbox][name=knowledge_bases]`).Each(func(_ int, s *goquery.Selection) {
		v, _ := s.Attr("value")
		kbs = append(kbs, v)
	})
	if !slices.Equal(kbs, []string{"faq", "handbook"}) {
		t.Errorf("knowledge bases %q", kbs)
	}
	// The enabled MCP tools and the built-in ones, each with a policy.
	var tools []string
	form.Find(`input[type=checkbox][name=tools]`).Each(func(_ int, s *goquery.Selection) {
		v, _ := s.Attr("value")
		tools = append(tools, v)
		if form.Find(`select[name="tool_policy.`+v+`"] option`).Length() != 3 {
			t.Errorf("no policy for %s", v)
		}
	})
	if want := []string{"files__read", "builtin__current_time", "builtin__search_knowledge", "builtin__fetch_url"}; !slices.Equal(tools, want) {
		t.Errorf("tools %q, want %q", tools, want)
	}
	// Trigger choices, special channels explained.
	var triggers []string
	form.Find(`select[name=binding_trigger] option`).Each(func(_ int, s *goquery.Selection) {
		v, _ := s.Attr("value")
		triggers = append(triggers, v)
	})
	if !slices.Equal(triggers, []string{"mention", "thread", "all"}) || valueSel(doc, `select[name=binding_trigger] option[selected]`) != "thread" {
		t.Errorf("triggers %q", triggers)
	}
	if help := textSel(doc, "#bindings-help"); !strings.Contains(help, "@dm") || !strings.Contains(help, "*") {
		t.Errorf("bindings help %q", help)
	}

	// Without a tool inventory the built-in tools are still offered.
	env2 := mustEnv(t, envOptions{})
	doc = mustDoc(t, env2.get("/assistants/new", env2.MustSession(env2.MustUser("ada", engine.RoleAdmin))).Body.Bytes())
	if doc.Find(`input[name=tools]`).Length() != 3 || !strings.Contains(textSel(doc, "#tools-notice"), "not configured") {
		t.Error("without an inventory: no built-in tools or no notice")
	}
	if !strings.Contains(textSel(doc, "#no-knowledge-bases"), "no knowledge base yet") {
		t.Error("no empty state for knowledge bases")
	}
}

func TestAssistantCreateViaForm(t *testing.T) {
	env := mustEnv(t, envOptions{Inventory: inventory()})
	mustKB(t, env, "handbook", "")
	old := env.MustAssistant("old-default", true)
	admin := env.MustSession(env.MustUser("ada", engine.RoleAdmin))

	sqlish := `Robert'); DROP TABLE assistants;--`
	w := env.postAssistantPage("/assistants", withAdminTools(assistantFormOf(admin, "description", sqlish)), admin)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/assistants?saved=Ops+Team" {
		t.Fatalf("status %d, location %q: %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	a := mustStoredAssistant(t, env, "Ops Team")
	alpha := 0.7
	want := engine.Assistant{ID: a.ID, Name: "Ops Team", Description: sqlish, SystemPrompt: "Be careful.\nAsk before acting.",
		Model: "gpt-test", Temperature: 0.3, MaxOutputTokens: 800, KnowledgeBases: []string{"handbook"},
		Tools:      []string{"files__read", "builtin__current_time", "web__fetch", "mail__send"},
		ToolPolicy: map[string]engine.ToolMode{"files__read": engine.ToolAsk, "web__fetch": engine.ToolDeny},
		Bindings: []engine.Binding{{Platform: engine.PlatformSlack, ChannelID: "C1", Trigger: engine.TriggerMention},
			{Platform: engine.PlatformDiscord, ChannelID: "@dm", Trigger: engine.TriggerAll}},
		Retrieval: engine.RetrievalSettings{Limit: 8, Mode: "hybrid", Fusion: "alpha", Alpha: &alpha, MinScore: 0.2, Rerank: true},
		IsDefault: true, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	got, _ := json.Marshal(a)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("stored\n%s\nwant\n%s", got, exp)
	}
	if o, _ := env.store.AssistantByID(context.Background(), old.ID); o.IsDefault {
		t.Error("the old default is still the default")
	}
	doc := mustDoc(t, env.get("/assistants?saved=Ops+Team", admin).Body.Bytes())
	if got := textSel(doc, "#assistants-saved[role=status]"); got != "Assistant Ops Team saved. Running bots use it from their next message." {
		t.Errorf("confirmation %q", got)
	}
	// The confirmation only speaks of assistants that exist.
	doc = mustDoc(t, env.get("/assistants?saved=%3Cb%3Enope", admin).Body.Bytes())
	if doc.Find("#assistants-saved").Length() != 0 {
		t.Error("a confirmation for an assistant that does not exist")
	}
}

func TestAssistantCreateFormMistakes(t *testing.T) {
	env := mustEnv(t, envOptions{Inventory: inventory()})
	mustKB(t, env, "handbook", "")
	env.MustAssistant("taken", false)
	admin := env.MustSession(env.MustUser("ada", engine.RoleAdmin))
	tests := []struct {
		name    string
		kv      []string
		status  int
		field   string // the field error's id
		message string
	}{
		{"bad name", []string{"name", "<b>!!"}, 400, "name-error", `Assistant name "<b>!!" is invalid`},
		{"empty name", []string{"name", "  "}, 400, "name-error", `Assistant name "" is invalid`},
		{"name taken", []string{"name", "TAKEN"}, 409, "name-error", `An assistant named "TAKEN" already exists`},
		{"temperature out of range", []string{"temperature", "3"}, 400, "temperature-error", "Temperature 3 is out of range: use a value from 0 to 2."},
		{"temperature not a number", []string{"temperature", "warm"}, 400, "temperature-error", "Temperature must be a number from 0 to 2"},
		{"temperature NaN", []string{"temperature", "NaN"}, 400, "temperature-error", "Temperature must be a number"},
		{"negative max tokens", []string{"max_output_tokens", "-1"}, 400, "max-output-tokens-error", "Max output tokens must be a whole number"},
		{"unknown knowledge base", []string{"knowledge_bases", "nope"}, 400, "knowledge-bases-error", `Knowledge base "nope" does not exist`},
		{"unknown policy", []string{"tool_policy.files__read", "sometimes"}, 400, "tools-error", `Policy "sometimes" for files__read is unknown`},
		{"bad other tool", []string{"tools_other", "web__fetch sometimes"}, 400, "tools-other-error", `Policy "sometimes" for web__fetch is unknown`},
		{"other tool twice", []string{"tools_other", "files__read"}, 400, "tools-other-error", `Tool "files__read" is listed twice.`},
		{"other tool line", []string{"tools_other", "a b c"}, 400, "tools-other-error", `"a b c" has more than that`},
		{"no platform", []string{"binding_platform", ""}, 400, "binding-error-0", `Pick the platform of channel "C1".`},
		{"bad trigger", []string{"binding_trigger", "often"}, 400, "binding-error-0", `Trigger "often" is unknown: use mention, thread or all.`},
		{"limit", []string{"retrieval.limit", "99"}, 400, "retrieval-limit-error", "Retrieval limit 99 is out of range"},
		{"limit not a number", []string{"retrieval.limit", "many"}, 400, "retrieval-limit-error", "must be a whole number"},
		{"mode", []string{"retrieval.mode", "fuzzy"}, 400, "retrieval-mode-error", `Search mode "fuzzy" is unknown`},
		{"fusion", []string{"retrieval.fusion", "max"}, 400, "retrieval-fusion-error", `Fusion "max" is unknown`},
		{"alpha", []string{"retrieval.alpha", "2"}, 400, "retrieval-alpha-error", "Alpha 2 is out of range"},
		{"rrf k", []string{"retrieval.rrf_k", "-3"}, 400, "retrieval-rrf-k-error", "The RRF k must not be negative"},
		{"min score", []string{"retrieval.min_score", "1.5"}, 400, "retrieval-min-score-error", "Minimum score 1.5 is out of range"},
		{"NUL in the prompt", []string{"system_prompt", "a\x00b"}, 400, "system-prompt-error", "not text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := setFields(withAdminTools(assistantFormOf(admin)), tt.kv...)
			w := env.postAssistantPage("/assistants", form, admin)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if strings.Contains(w.Body.String(), "<b>!!") {
				t.Fatal("typed text came back unescaped")
			}
			doc := mustDoc(t, w.Body.Bytes())
			if got := textSel(doc, "#"+tt.field+".field-error"); !strings.Contains(got, tt.message) {
				t.Fatalf("error %q, want %q", got, tt.message)
			}
			// The summary links to the field.
			if doc.Find("#form-errors[role=alert] li a").Length() != 1 {
				t.Errorf("summary: %q", textSel(doc, "#form-errors"))
			}
			// The field with the error is marked, and points to its message.
			if doc.Find(`[aria-describedby~="`+tt.field+`"]`).Length() != 1 {
				t.Errorf("no field described by %s", tt.field)
			}
			// Everything typed is still there.
			kept := func(sel, want string) {
				t.Helper()
				if got := valueSel(doc, sel); got != want {
					t.Errorf("%s = %q, want %q", sel, got, want)
				}
			}
			kept(`input[name=name]`, form.Get("name"))
			kept(`input[name=description]`, "Runs things")
			kept(`input[name=model]`, "gpt-test")
			kept(`input[name=temperature]`, form.Get("temperature"))
			kept(`input[name=max_output_tokens]`, form.Get("max_output_tokens"))
			kept(`input[name="retrieval.limit"]`, form.Get("retrieval.limit"))
			kept(`input[name="retrieval.alpha"]`, form.Get("retrieval.alpha"))
			kept(`input[name="retrieval.rrf_k"]`, form.Get("retrieval.rrf_k"))
			kept(`input[name="retrieval.min_score"]`, form.Get("retrieval.min_score"))
			if tt.name != "NUL in the prompt" {
				if got := doc.Find(`textarea[name=system_prompt]`).Text(); got != "Be careful.\nAsk before acting." {
					t.Errorf("system prompt %q", got)
				}
			}
			if got := doc.Find(`textarea[name=tools_other]`).Text(); got != strings.ReplaceAll(form.Get("tools_other"), "\r\n", "\n") {
				t.Errorf("other tools %q", got)
			}
			for _, sel := range []string{`input[name=is_default][checked]`, `input[name="retrieval.rerank"][checked]`,
				`input[name=tools][value=files__read][checked]`, `input[name=tools][value=builtin__current_time][checked]`} {
				if doc.Find(sel).Length() != 1 {
					t.Errorf("%s lost", sel)
				}
			}
			if tt.field != "knowledge-bases-error" && doc.Find(`input[name=knowledge_bases][value=handbook][checked]`).Length() != 1 {
				t.Error("the ticked knowledge base was lost")
			}
			if want := form.Get("tool_policy.files__read"); valueSel(doc, `select[name="tool_policy.files__read"] option[selected]`) != want && want != "sometimes" {
				t.Errorf("policy of files__read lost")
			}
			if got := valueSel(doc, `select[name="retrieval.mode"] option[selected]`); got != form.Get("retrieval.mode") && tt.name != "mode" {
				t.Errorf("mode %q", got)
			}
			// The bindings typed, then one empty row.
			var rows []string
			doc.Find("tr.binding-row").Each(func(_ int, s *goquery.Selection) {
				p, _ := s.Find(`select[name=binding_platform] option[selected]`).Attr("value")
				c, _ := s.Find(`input[name=binding_channel]`).Attr("value")
				tr, _ := s.Find(`select[name=binding_trigger] option[selected]`).Attr("value")
				rows = append(rows, p+"|"+c+"|"+tr)
			})
			wantRows := []string{form["binding_platform"][0] + "|C1|" + form["binding_trigger"][0], "discord|@dm|all", "||thread"}
			if tt.name == "bad trigger" {
				wantRows[0] = "slack|C1|" // an unknown trigger is not an option
			}
			if !slices.Equal(rows, wantRows) {
				t.Errorf("binding rows %q, want %q", rows, wantRows)
			}
			if all, _ := env.store.ListAssistants(context.Background()); len(all) != 1 {
				t.Fatalf("a refused form stored an assistant: %d", len(all))
			}
		})
	}
}

func TestAssistantFormBindingsKeepAndRemove(t *testing.T) {
	env := mustEnv(t, envOptions{})
	admin := env.MustSession(env.MustUser("ada", engine.RoleAdmin))
	// A duplicate binding is refused on its row; a row without a channel
	// is removed.
	form := assistantFormOf(admin, "name", "a", "knowledge_bases", "\x00delete")
	form["binding_platform"] = []string{"slack", "slack", "discord"}
	form["binding_channel"] = []string{"C1", " C1 ", ""}
	form["binding_trigger"] = []string{"mention", "all", "all"}
	w := env.postAssistantPage("/assistants", form, admin)
	doc := mustDoc(t, w.Body.Bytes())
	if w.Code != http.StatusBadRequest || !strings.Contains(textSel(doc, "#binding-error-1"), "bound twice") {
		t.Fatalf("%d %q", w.Code, textSel(doc, ".field-error"))
	}
	if doc.Find("#binding-error-0").Length() != 0 || doc.Find("tr.binding-row").Length() != 4 {
		t.Errorf("rows: %d", doc.Find("tr.binding-row").Length())
	}
	form["binding_channel"] = []string{"C1", "", "C2"}
	if w := env.postAssistantPage("/assistants", form, admin); w.Code != http.StatusSeeOther {
		t.Fatalf("%d: %s", w.Code, w.Body)
	}
	a := mustStoredAssistant(t, env, "a")
	if want := []engine.Binding{{Platform: "slack", ChannelID: "C1", Trigger: "mention"}, {Platform: "discord", ChannelID: "C2", Trigger: "all"}}; !slices.Equal(a.Bindings, want) {
		t.Fatalf("bindings %+v", a.Bindings)
	}
}

func TestAssistantEditViaForm(t *testing.T) {
	env := mustEnv(t, envOptions{})
	mustKB(t, env, "handbook", "")
	admin := env.MustSession(env.MustUser("ada", engine.RoleAdmin))
	ctx := context.Background()
	a := env.MustAssistant("ops", false)
	a.Tools, a.ToolPolicy = []string{"legacy__tool", "builtin__current_time"}, map[string]engine.ToolMode{"legacy__tool": engine.ToolAsk}
	a.KnowledgeBases = []string{"handbook", "gone"}
	a.Bindings = []engine.Binding{{Platform: "slack", ChannelID: "C1"}}
	a.Retrieval.RRFK = 30
	if err := env.store.UpdateAssistant(ctx, a); err != nil {
		t.Fatal(err)
	}

	w := env.get("/assistants/"+a.ID+"/edit", admin)
	if w.Code != http.StatusOK {
		t.Fatalf("%d: %s", w.Code, w.Body)
	}
	doc := mustDoc(t, w.Body.Bytes())
	if doc.Find(`form#assistant-form[action="/assistants/`+a.ID+`"]`).Length() != 1 {
		t.Fatal("the form does not post to the assistant")
	}
	if valueSel(doc, "input[name=name]") != "ops" || doc.Find("textarea[name=system_prompt]").Text() != "Be brief." ||
		valueSel(doc, `input[name="retrieval.rrf_k"]`) != "30" || valueSel(doc, `input[name="retrieval.limit"]`) != "" {
		t.Error("the form is not filled from the assistant")
	}
	// A knowledge base that is gone, and a tool nobody offers, stay ticked and say so.
	if doc.Find(`input[name=knowledge_bases][value=gone][checked]`).Length() != 1 || !strings.Contains(textSel(doc, "#knowledge-bases"), "does not exist") {
		t.Error("the missing knowledge base is not shown")
	}
	if doc.Find(`input[name=tools][value=legacy__tool][checked]`).Length() != 1 || valueSel(doc, `select[name="tool_policy.legacy__tool"] option[selected]`) != "ask" {
		t.Error("the assistant's tool is not shown with its policy")
	}
	if got := valueSel(doc, `select[name=binding_trigger] option[selected]`); got != "thread" {
		t.Errorf("default trigger shows as %q", got)
	}

	form := url.Values{"csrf": {admin.csrf}, "name": {"ops2"}, "system_prompt": {"New prompt."}, "temperature": {"1"},
		"knowledge_bases": {"handbook", "gone"}, "tools": {"legacy__tool"}, "tool_policy.legacy__tool": {"deny"},
		"binding_platform": {"slack", "mattermost"}, "binding_channel": {"C1", "*"}, "binding_trigger": {"thread", "all"}}
	w = env.postAssistantPage("/assistants/"+a.ID, form, admin)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/assistants?saved=ops2" {
		t.Fatalf("%d %q: %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	got, err := env.store.AssistantByID(ctx, a.ID)
	if err != nil || got.Name != "ops2" || got.SystemPrompt != "New prompt." || got.Temperature != 1 || got.Description != "" ||
		!slices.Equal(got.KnowledgeBases, []string{"handbook", "gone"}) || !slices.Equal(got.Tools, []string{"legacy__tool"}) ||
		got.ToolModeFor("legacy__tool") != engine.ToolDeny || len(got.Bindings) != 2 || got.Bindings[1].ChannelID != "*" ||
		got.Retrieval.RRFK != 0 || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("updated %+v, %v", got, err)
	}

	// Unknown assistants.
	if w := env.get("/assistants/nope/edit", admin); w.Code != http.StatusNotFound {
		t.Errorf("edit unknown: %d", w.Code)
	}
	if w := env.postAssistantPage("/assistants/nope", form, admin); w.Code != http.StatusNotFound {
		t.Errorf("update unknown: %d", w.Code)
	}
	// The form's address, reloaded, goes to the form.
	if w := env.get("/assistants/"+a.ID, admin); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/assistants/"+a.ID+"/edit" {
		t.Errorf("GET /assistants/ID: %d %q", w.Code, w.Header().Get("Location"))
	}
}

func TestAssistantDeleteViaForm(t *testing.T) {
	env := mustEnv(t, envOptions{})
	editor := env.MustSession(env.MustUser("eddie", engine.RoleEditor))
	a := env.MustAssistant("ops", true)
	env.MustAssistant("other", false)

	// Without JavaScript, Delete leads to a confirmation on the list.
	doc := mustDoc(t, env.get("/assistants?delete="+a.ID, editor).Body.Bytes())
	confirm := doc.Find("#delete-confirm")
	if !strings.Contains(textSel(doc, "#delete-confirm h2"), "Delete assistant ops?") ||
		confirm.Find(`form[method=post][action="/assistants/`+a.ID+`/delete"] input[name=csrf][value="`+editor.csrf+`"]`).Length() != 1 {
		t.Fatalf("confirmation: %q", textSel(doc, "#delete-confirm"))
	}
	if doc = mustDoc(t, env.get("/assistants?delete=nope", editor).Body.Bytes()); doc.Find("#delete-confirm").Length() != 0 || !strings.Contains(textSel(doc, "[role=alert]"), "does not exist") {
		t.Error("confirming an unknown assistant")
	}

	w := env.postAssistantPage("/assistants/"+a.ID+"/delete", url.Values{"csrf": {editor.csrf}}, editor)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/assistants?deleted=ops" {
		t.Fatalf("%d %q", w.Code, w.Header().Get("Location"))
	}
	if _, err := env.store.AssistantByID(context.Background(), a.ID); !engine.IsNotFound(err) {
		t.Fatalf("still stored: %v", err)
	}
	doc = mustDoc(t, env.get("/assistants?deleted=ops", editor).Body.Bytes())
	if got := textSel(doc, "#assistants-deleted"); got != "Assistant ops deleted." || doc.Find("li.assistant-card").Length() != 1 {
		t.Errorf("after delete: %q", got)
	}
	if w := env.postAssistantPage("/assistants/"+a.ID+"/delete", url.Values{"csrf": {editor.csrf}}, editor); w.Code != http.StatusNotFound {
		t.Errorf("deleting again: %d", w.Code)
	}
}

func TestAssistantPagesRBAC(t *testing.T) {
	env := mustEnv(t, envOptions{})
	a := env.MustAssistant("ops", false)
	type route struct{ method, path string }
	routes := []route{
		{http.MethodGet, "/assistants"},
		{http.MethodGet, "/assistants/new"},
		{http.MethodPost, "/assistants"},
		{http.MethodGet, "/assistants/" + a.ID + "/edit"},
		{http.MethodPost, "/assistants/" + a.ID},
		{http.MethodPost, "/assistants/" + a.ID + "/delete"},
	}
	allowed := map[engine.Role]func(route) bool{
		engine.RoleViewer: func(r route) bool { return r.method == http.MethodGet && r.path == "/assistants" },
		engine.RoleEditor: func(route) bool { return true },
		engine.RoleAdmin:  func(route) bool { return true },
	}
	for _, role := range []engine.Role{engine.RoleViewer, engine.RoleEditor, engine.RoleAdmin} {
		c := env.MustSession(env.MustUser("u-"+string(role), role))
		for _, r := range routes {
			var w *httptest.ResponseRecorder
			if r.method == http.MethodGet {
				w = env.get(r.path, c)
			} else {
				// An invalid form (no name): allowed roles get it back (400),
				// the others are refused before it is read.
				form := url.Values{"csrf": {c.csrf}}
				if strings.HasSuffix(r.path, "/delete") {
					form = url.Values{} // no token: refused either way, nothing deleted
				}
				w = env.postAssistantPage(r.path, form, c)
			}
			ok := allowed[role](r)
			switch {
			case !ok && w.Code != http.StatusForbidden:
				t.Errorf("%s %s %s: %d, want 403", role, r.method, r.path, w.Code)
			case !ok && !strings.Contains(mustDoc(t, w.Body.Bytes()).Text(), "Managing assistants needs the admin or editor role"):
				t.Errorf("%s %s %s: refusal does not say why", role, r.method, r.path)
			case ok && r.method == http.MethodGet && w.Code != http.StatusOK:
				t.Errorf("%s %s %s: %d, want 200", role, r.method, r.path, w.Code)
			case ok && r.method == http.MethodPost && strings.HasSuffix(r.path, "/delete") && w.Code != http.StatusForbidden:
				t.Errorf("%s %s %s without a token: %d, want 403", role, r.method, r.path, w.Code)
			case ok && r.method == http.MethodPost && !strings.HasSuffix(r.path, "/delete") && w.Code != http.StatusBadRequest:
				t.Errorf("%s %s %s: %d, want 400 (the form again)", role, r.method, r.path, w.Code)
			}
		}
	}
	// Signed out: the sign-in page, which brings you back.
	for _, r := range routes {
		var w *httptest.ResponseRecorder
		if r.method == http.MethodGet {
			w = env.get(r.path, nil)
		} else {
			w = env.postAssistantPage(r.path, url.Values{}, nil)
		}
		if w.Code != http.StatusFound || !strings.HasPrefix(w.Header().Get("Location"), "/login?next=") {
			t.Errorf("anonymous %s %s: %d %q", r.method, r.path, w.Code, w.Header().Get("Location"))
		}
	}
	if got, _ := env.store.AssistantByID(context.Background(), a.ID); got == nil || got.Name != "ops" {
		t.Fatal("a refused request changed the assistant")
	}
}

func TestAssistantEditorCannotChangeTools(t *testing.T) {
	env := mustEnv(t, envOptions{Inventory: inventory()})
	ctx := context.Background()
	a := env.MustAssistant("ops", false)
	a.Tools, a.ToolPolicy = []string{"files__read", "files__write"}, map[string]engine.ToolMode{"files__write": engine.ToolAsk, "files__read": engine.ToolAllow}
	if err := env.store.UpdateAssistant(ctx, a); err != nil {
		t.Fatal(err)
	}
	editorUser := env.MustUser("eddie", engine.RoleEditor)
	editor := env.MustSession(editorUser)

	// The page shows the tools read-only.
	doc := mustDoc(t, env.get("/assistants/"+a.ID+"/edit", editor).Body.Bytes())
	if n := doc.Find(`[name=tools], [name^="tool_policy."], [name=tools_other]`).Length(); n != 0 {
		t.Fatalf("an editor gets %d tool fields", n)
	}
	if !strings.Contains(textSel(doc, "#tools-readonly"), "Only admins") ||
		doc.Find(`#tools-current .assistant-tool[data-tool=files__write][data-mode=ask]`).Length() != 1 {
		t.Fatalf("read-only tools: %q", textSel(doc, "#tools"))
	}
	if doc = mustDoc(t, env.get("/assistants/new", editor).Body.Bytes()); doc.Find(`[name=tools], [name^="tool_policy."]`).Length() != 0 {
		t.Fatal("an editor's new form has tool fields")
	}

	// The rest of the form saves; the tools stay as they are.
	w := env.postAssistantPage("/assistants/"+a.ID, url.Values{"csrf": {editor.csrf}, "name": {"ops"}, "system_prompt": {"Edited."}}, editor)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("%d: %s", w.Code, w.Body)
	}
	got := mustStoredAssistant(t, env, "ops")
	if got.SystemPrompt != "Edited." || !slices.Equal(got.Tools, a.Tools) || len(got.ToolPolicy) != 2 || got.ToolModeFor("files__write") != engine.ToolAsk {
		t.Fatalf("after the editor's save: %+v", got)
	}
	// The same tools sent back are accepted.
	same := url.Values{"csrf": {editor.csrf}, "name": {"ops"}, "system_prompt": {"Edited."}, "tools": {"files__write", "files__read"}, "tool_policy.files__write": {"ask"}}
	if w := env.postAssistantPage("/assistants/"+a.ID, same, editor); w.Code != http.StatusSeeOther {
		t.Fatalf("same tools: %d %s", w.Code, w.Body)
	}
	// A forged form changing them is refused, and changes nothing.
	for name, form := range map[string]url.Values{
		"add a tool":      {"tools": {"files__read", "files__write", "web__fetch"}, "tool_policy.files__write": {"ask"}},
		"change a policy": {"tools": {"files__read", "files__write"}, "tool_policy.files__write": {"allow"}},
		"drop a tool":     {"tools": {"files__read"}},
		"other tools":     {"tools_other": {"web__fetch"}},
		"unreadable":      {"tools_other": {"a b c"}},
		"policy only":     {"tool_policy.files__read": {"deny"}},
	} {
		form.Set("csrf", editor.csrf)
		form.Set("name", "ops")
		form.Set("system_prompt", "Forged.")
		w := env.postAssistantPage("/assistants/"+a.ID, form, editor)
		if w.Code != http.StatusForbidden || !strings.Contains(mustDoc(t, w.Body.Bytes()).Text(), "Only admins may change an assistant's tools and tool policy") {
			t.Errorf("%s: %d", name, w.Code)
		}
	}
	w = env.postAssistantPage("/assistants", url.Values{"csrf": {editor.csrf}, "name": {"new"}, "tools": {"builtin__current_time"}}, editor)
	if w.Code != http.StatusForbidden || !strings.Contains(mustDoc(t, w.Body.Bytes()).Text(), "Only admins may give an assistant tools") {
		t.Errorf("create with tools: %d", w.Code)
	}
	if got := mustStoredAssistant(t, env, "ops"); got.SystemPrompt != "Edited." || got.ToolModeFor("files__write") != engine.ToolAsk || len(got.Tools) != 2 {
		t.Fatalf("a refused form changed the assistant: %+v", got)
	}
	if _, err := env.store.AssistantByName(ctx, "new"); !engine.IsNotFound(err) {
		t.Fatal("a refused form created an assistant")
	}
	// An editor creates assistants without tools.
	if w := env.postAssistantPage("/assistants", url.Values{"csrf": {editor.csrf}, "name": {"new"}}, editor); w.Code != http.StatusSeeOther {
		t.Fatalf("editor create: %d %s", w.Code, w.Body)
	}

	// The API enforces the same.
	token := env.MustToken(editorUser)
	w = env.get("/api/v1/assistants/"+a.ID, token)
	if w.Code != http.StatusOK {
		t.Fatalf("editor GET: %d %s", w.Code, w.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	body["description"] = "via the API"
	raw, _ := json.Marshal(body)
	if w := env.sendJSON(http.MethodPut, "/api/v1/assistants/"+a.ID, string(raw), token); w.Code != http.StatusOK {
		t.Fatalf("editor PUT with the tools unchanged: %d %s", w.Code, w.Body)
	}
	body["tool_policy"] = map[string]string{"files__write": "allow"}
	raw, _ = json.Marshal(body)
	w = env.sendJSON(http.MethodPut, "/api/v1/assistants/"+a.ID, string(raw), token)
	if code, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusForbidden || code != engine.EFORBIDDEN ||
		!strings.Contains(msg, `Only admins may change an assistant's tools and tool policy`) || !strings.Contains(msg, `Send "tools" and "tool_policy" as they are`) {
		t.Errorf("editor PUT changing the policy: %d %s", w.Code, w.Body)
	}
	w = env.sendJSON(http.MethodPut, "/api/v1/assistants/"+a.ID, `{"name":"ops"}`, token)
	if w.Code != http.StatusForbidden {
		t.Errorf("editor PUT leaving the tools out (emptying them): %d %s", w.Code, w.Body)
	}
	w = env.sendJSON(http.MethodPost, "/api/v1/assistants", `{"name":"api-new","tools":["x"]}`, token)
	if _, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusForbidden || !strings.Contains(msg, `Leave "tools" and "tool_policy" out`) {
		t.Errorf("editor POST with tools: %d %s", w.Code, w.Body)
	}
	if w := env.sendJSON(http.MethodPost, "/api/v1/assistants", `{"name":"api-new"}`, token); w.Code != http.StatusCreated {
		t.Errorf("editor POST without tools: %d %s", w.Code, w.Body)
	}
	if got := mustStoredAssistant(t, env, "ops"); got.Description != "via the API" || got.ToolModeFor("files__write") != engine.ToolAsk || len(got.Tools) != 2 {
		t.Fatalf("after the API: %+v", got)
	}
	// Admins change tools through the form.
	admin := env.MustSession(env.MustUser("ada", engine.RoleAdmin))
	form := url.Values{"csrf": {admin.csrf}, "name": {"ops"}, "tools": {"files__read"}, "tool_policy.files__read": {"deny"}}
	if w := env.postAssistantPage("/assistants/"+a.ID, form, admin); w.Code != http.StatusSeeOther {
		t.Fatalf("admin: %d %s", w.Code, w.Body)
	}
	if got := mustStoredAssistant(t, env, "ops"); !slices.Equal(got.Tools, []string{"files__read"}) || got.ToolModeFor("files__read") != engine.ToolDeny {
		t.Fatalf("after the admin: %+v", got)
	}
}

func TestAssistantFormsNeedCSRF(t *testing.T) {
	env := mustEnv(t, envOptions{})
	admin := env.MustSession(env.MustUser("ada", engine.RoleAdmin))
	a := env.MustAssistant("ops", false)
	for _, tc := range []struct {
		name, path string
		form       url.Values
	}{
		{"create without token", "/assistants", assistantFormOf(admin, "csrf", "\x00delete", "knowledge_bases", "\x00delete")},
		{"create with another token", "/assistants", assistantFormOf(admin, "csrf", "forged", "knowledge_bases", "\x00delete")},
		{"update without token", "/assistants/" + a.ID, assistantFormOf(admin, "csrf", "\x00delete", "name", "ops", "knowledge_bases", "\x00delete")},
		{"delete without token", "/assistants/" + a.ID + "/delete", url.Values{}},
		{"delete with an empty token", "/assistants/" + a.ID + "/delete", url.Values{"csrf": {""}}},
	} {
		w := env.postAssistantPage(tc.path, tc.form, admin)
		if w.Code != http.StatusForbidden || !strings.Contains(mustDoc(t, w.Body.Bytes()).Text(), "The form has expired") {
			t.Errorf("%s: %d", tc.name, w.Code)
		}
	}
	// A cross-site post is refused even with the token.
	r := httptest.NewRequest(http.MethodPost, "/assistants/"+a.ID+"/delete", strings.NewReader("csrf="+url.QueryEscape(admin.csrf)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	r.AddCookie(admin.session)
	if w := env.serve(r); w.Code != http.StatusForbidden {
		t.Errorf("cross-site: %d", w.Code)
	}
	all, _ := env.store.ListAssistants(context.Background())
	if len(all) != 1 || all[0].SystemPrompt != "Be brief." {
		t.Fatalf("a refused form changed the assistants: %+v", all)
	}
}

// TestAssistantChangeReachesNextTurn: the engine (and the bots, which call
// it) read assistants from the store on every message, so a change saved
// in the console applies to the very next turn, without a restart.
func TestAssistantChangeReachesNextTurn(t *testing.T) {
	env := mustEnv(t, envOptions{})
	ctx := context.Background()
	editor := env.MustSession(env.MustUser("eddie", engine.RoleEditor))
	form := url.Values{"csrf": {editor.csrf}, "name": {"ops"}, "system_prompt": {"Prompt one."}, "temperature": {"0.1"},
		"binding_platform": {"slack"}, "binding_channel": {"C1"}, "binding_trigger": {"mention"}}
	if w := env.postAssistantPage("/assistants", form, editor); w.Code != http.StatusSeeOther {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	a := mustStoredAssistant(t, env, "ops")
	ask := func(channel, thread, text string) engine.ChatRequest {
		t.Helper()
		msg := engine.Message{ID: thread + text, Thread: engine.Thread{Channel: engine.Channel{Platform: engine.PlatformSlack, ID: channel}, ID: thread},
			User: engine.ChatUser{ID: "U1"}, Text: text}
		if _, err := env.chat.Handle(ctx, msg, &enginetest.Replier{}); err != nil {
			t.Fatalf("turn %q in %s: %v", text, channel, err)
		}
		reqs := env.model.Requests()
		return reqs[len(reqs)-1]
	}
	system := func(req engine.ChatRequest) string {
		if len(req.Messages) == 0 || req.Messages[0].Role != engine.RoleSystem {
			t.Fatalf("no system message: %+v", req.Messages)
		}
		return req.Messages[0].Content
	}
	req := ask("C1", "T1", "first")
	if !strings.Contains(system(req), "Prompt one.") || req.Temperature != 0.1 {
		t.Fatalf("first turn: %q %v", system(req), req.Temperature)
	}

	// Edit in the console: prompt, temperature, model, and a new channel.
	form.Set("system_prompt", "Prompt two.")
	form.Set("temperature", "0.9")
	form.Set("model", "bigger-model")
	form["binding_platform"] = []string{"slack", "slack"}
	form["binding_channel"] = []string{"C1", "C9"}
	form["binding_trigger"] = []string{"mention", "all"}
	if w := env.postAssistantPage("/assistants/"+a.ID, form, editor); w.Code != http.StatusSeeOther {
		t.Fatalf("update: %d %s", w.Code, w.Body)
	}
	// The next message of the same thread.
	req = ask("C1", "T1", "second")
	if s := system(req); !strings.Contains(s, "Prompt two.") || strings.Contains(s, "Prompt one.") || req.Temperature != 0.9 || req.Model != "bigger-model" {
		t.Fatalf("next turn: %q %v %q", s, req.Temperature, req.Model)
	}
	// The new channel: routed to the assistant at once, and the trigger
	// policy the adapters compute from the store says "all".
	req = ask("C9", "T2", "third")
	if !strings.Contains(system(req), "Prompt two.") {
		t.Fatalf("new channel: %q", system(req))
	}
	all, err := env.store.ListAssistants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tr := engine.TriggerFor(all, engine.Channel{Platform: engine.PlatformSlack, ID: "C9"}); tr != engine.TriggerAll {
		t.Fatalf("trigger of C9: %s", tr)
	}
	convs := env.conversations()
	for _, c := range convs {
		if c.AssistantID != a.ID {
			t.Fatalf("conversation %s went to %s", c.ID, c.AssistantID)
		}
	}
}

func TestPlaygroundPreselectsAssistant(t *testing.T) {
	env := mustEnv(t, envOptions{})
	env.MustAssistant("alpha", false)
	env.MustAssistant("Ops Team", false)
	env.MustAssistant("helper", true)
	viewer := env.MustSession(env.MustUser("vera", engine.RoleViewer))
	for query, want := range map[string]string{
		"":                        "helper",
		"?assistant=Ops%20Team":   "Ops Team",
		"?assistant=ops+team":     "Ops Team",
		"?assistant=alpha":        "alpha",
		"?assistant=nope":         "helper",
		"?assistant=%3Cscript%3E": "helper",
	} {
		doc := mustDoc(t, env.get("/playground"+query, viewer).Body.Bytes())
		if got := valueSel(doc, `select#assistant option[selected]`); got != want || doc.Find(`select#assistant option[selected]`).Length() != 1 {
			t.Errorf("%q: selected %q, want %q", query, got, want)
		}
	}
}

// TestAssistantsInTheBrowser: an admin creates an assistant with the form
// (a tool with its policy, two bindings, the second added by the page's
// script), finds it in the list and deletes it through the confirmation
// dialog.
func TestAssistantsInTheBrowser(t *testing.T) {
	ctx := mustBrowser(t)
	env := mustEnv(t, envOptions{})
	mustKB(t, env, "handbook", "The staff handbook")
	srv := httptest.NewServer(env.srv)
	t.Cleanup(srv.Close)
	env.MustUser("ada", engine.RoleAdmin)

	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.Join(strings.Fields(s), " ")
	}
	do(
		chromedp.Navigate(srv.URL+"/login?next=/assistants"),
		chromedp.WaitVisible(chromedp.CSS(`#login-name`)),
		chromedp.SendKeys(chromedp.CSS(`#login-name`), "ada"),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), testPassword),
		chromedp.Submit(chromedp.CSS(`#login-password`)),
		chromedp.WaitVisible(chromedp.CSS(`#assistants-empty`)),
		chromedp.Click(chromedp.CSS(`#new-assistant`)),
		chromedp.WaitVisible(chromedp.CSS(`#field-name`)),
		chromedp.SendKeys(chromedp.CSS(`#field-name`), "Ops Team"),
		chromedp.SendKeys(chromedp.CSS(`#field-system-prompt`), "You help the <ops> team."),
		chromedp.Click(chromedp.CSS(`input[name=knowledge_bases][value=handbook]`)),
		chromedp.Click(chromedp.CSS(`input[name=tools][value=builtin__current_time]`)),
		chromedp.SetValue(chromedp.CSS(`select[name="tool_policy.builtin__current_time"]`), "ask"),
		chromedp.SetValue(chromedp.CSS(`#binding-platform-0`), "slack"),
		chromedp.SendKeys(chromedp.CSS(`#binding-channel-0`), "C0123"),
		chromedp.SetValue(chromedp.CSS(`#binding-trigger-0`), "mention"),
		chromedp.Click(chromedp.CSS(`#add-binding`)),
		chromedp.WaitVisible(chromedp.CSS(`#binding-channel-1`)),
		chromedp.SetValue(chromedp.CSS(`#binding-platform-1`), "discord"),
		chromedp.SendKeys(chromedp.CSS(`#binding-channel-1`), "@dm"),
		chromedp.Submit(chromedp.CSS(`#field-name`)),
		chromedp.WaitVisible(chromedp.CSS(`#assistants-saved`)),
	)
	if got := text(`#assistants-saved`); !strings.Contains(got, "Assistant Ops Team saved.") {
		t.Errorf("status %q", got)
	}
	if got := text(`.assistant-card .assistant-tools`); got != "builtin__current_time ask" {
		t.Errorf("tools %q", got)
	}
	if got := text(`.assistant-card .assistant-bindings`); got != "discord: every direct message · answers mentions and its threads (thread) slack: C0123 · answers mentions only (mention)" {
		t.Errorf("bindings %q", got)
	}
	a := mustStoredAssistant(t, env, "Ops Team")
	if a.SystemPrompt != "You help the <ops> team." || !slices.Equal(a.KnowledgeBases, []string{"handbook"}) || len(a.Bindings) != 2 {
		t.Errorf("stored %+v", a)
	}

	// Delete: the dialog, cancelled, then confirmed.
	do(
		chromedp.Click(chromedp.CSS(`.assistant-delete`)),
		chromedp.WaitVisible(chromedp.CSS(`#delete-dialog`)),
	)
	if got := text(`#delete-dialog-title`); got != "Delete assistant Ops Team?" {
		t.Errorf("dialog %q", got)
	}
	do(
		chromedp.Click(chromedp.CSS(`#delete-dialog-cancel`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#delete-dialog`)),
		chromedp.Click(chromedp.CSS(`.assistant-delete`)),
		chromedp.WaitVisible(chromedp.CSS(`#delete-dialog`)),
		chromedp.Click(chromedp.CSS(`#delete-dialog button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#assistants-deleted`)),
	)
	if _, err := env.store.AssistantByID(context.Background(), a.ID); !engine.IsNotFound(err) {
		t.Fatalf("not deleted: %v", err)
	}
}
