package web

import (
	"context"
	"errors"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// The assistants pages. Everyone signed in sees the assistants; admins and
// editors create, edit and delete them, but only admins change an
// assistant's tools and tool policy (guardTools, shared with the JSON API
// in assistants.go). The engine and the bots read assistants from the
// store on every message, so a saved change applies to the next one.

// assistantPageNames are this area's page templates (templates/NAME.html).
var assistantPageNames = []string{"assistants", "assistant_form"}

// manageAssistants is what the editor routes are refused as, for viewers.
const manageAssistants = "Managing assistants"

// assistantRoutes registers this area's pages and API routes. The JSON API
// (/api/v1/assistants…) is registered in routes.go.
func (s *Server) assistantRoutes(pages, api *gin.RouterGroup) {
	pages.GET("/assistants", s.showAssistants)
	pages.GET("/assistants/:id", s.assistantLink)
	managers := pages.Group("/assistants", s.requireRole(manageAssistants, engine.RoleAdmin, engine.RoleEditor))
	managers.GET("/new", s.newAssistantPage)
	managers.POST("", s.createAssistantPage)
	managers.GET("/:id/edit", s.editAssistantPage)
	managers.POST("/:id", s.updateAssistantPage)
	managers.POST("/:id/delete", s.deleteAssistantPage)
}

// The platforms a binding can name in the form, and the triggers.
var (
	assistantPlatforms = []string{string(engine.PlatformSlack), string(engine.PlatformDiscord), string(engine.PlatformMattermost)}
	assistantTriggers  = []assistantChoice{
		{string(engine.TriggerMention), "mentions only"},
		{string(engine.TriggerThread), "mentions and threads"},
		{string(engine.TriggerAll), "every message"},
	}
	assistantToolModes   = []string{string(engine.ToolAllow), string(engine.ToolAsk), string(engine.ToolDeny)}
	assistantSearchModes = []assistantChoice{{"", "default (hybrid)"}, {engine.SearchHybrid, "hybrid"}, {engine.SearchLexical, "lexical"}, {engine.SearchVector, "vector"}}
	assistantFusions     = []assistantChoice{{"", "default (rrf)"}, {engine.FusionRRF, "rrf"}, {engine.FusionAlpha, "alpha"}}
)

// builtinTools are the tools every console offers (when configured: the
// knowledge search needs a retriever, fetch_url an allowlist of sites).
var builtinTools = []ToolInfo{
	{Name: "builtin__current_time", Description: "The current date and time, in UTC and in a given time zone."},
	{Name: "builtin__search_knowledge", Description: "Search the assistant's knowledge bases again, with other words."},
	{Name: "builtin__fetch_url", Description: "Fetch a page from the allowed sites (tools.fetch_allowlist) and read its text."},
}

type assistantChoice struct {
	Value string
	Label string
}

// assistantsPage is the data of /assistants.
type assistantsPage struct {
	Assistants []assistantCard
	CanManage  bool
	Saved      string         // the assistant just saved (?saved=NAME)
	Deleted    string         // the assistant just deleted (?deleted=NAME)
	Confirm    *assistantCard // the deletion to confirm (?delete=ID: the page without JavaScript)
	Error      string
}

// assistantCard is an assistant as the list shows it.
type assistantCard struct {
	ID              string
	Name            string
	Description     string
	SystemPrompt    string
	Model           string
	Temperature     string
	MaxOutputTokens int
	KnowledgeBases  []string
	Tools           []assistantToolMode
	Bindings        []assistantBindingView
	Retrieval       string
	IsDefault       bool
}

type assistantToolMode struct {
	Name string
	Mode string
}

type assistantBindingView struct {
	Platform string
	Channel  string // the channel id; "" for the wildcards
	Where    string // "every direct message" or "every channel" for the wildcards
	Trigger  string
	Default  bool // the binding sets no trigger: the default applies
}

func assistantCardOf(a *engine.Assistant) assistantCard {
	card := assistantCard{ID: a.ID, Name: a.Name, Description: a.Description, SystemPrompt: a.SystemPrompt, Model: a.Model,
		Temperature: formatFloat(a.Temperature), MaxOutputTokens: a.MaxOutputTokens, KnowledgeBases: a.KnowledgeBases,
		Retrieval: retrievalSummary(a.Retrieval), IsDefault: a.IsDefault}
	for _, t := range a.Tools {
		card.Tools = append(card.Tools, assistantToolMode{Name: t, Mode: string(a.ToolModeFor(t))})
	}
	for _, b := range a.Bindings {
		v := assistantBindingView{Platform: string(b.Platform), Channel: b.ChannelID, Trigger: string(b.Trigger)}
		switch b.ChannelID {
		case engine.ChannelAnyDM:
			v.Channel, v.Where = "", "every direct message"
		case engine.ChannelAnywhere:
			v.Channel, v.Where = "", "every channel"
		}
		if v.Trigger == "" {
			v.Trigger, v.Default = string(engine.DefaultTrigger), true
		}
		card.Bindings = append(card.Bindings, v)
	}
	sort.SliceStable(card.Bindings, func(i, j int) bool { return card.Bindings[i].Platform < card.Bindings[j].Platform })
	return card
}

// retrievalSummary says in a few words how the assistant searches.
func retrievalSummary(r engine.RetrievalSettings) string {
	limit := r.Limit
	if limit == 0 {
		limit = 5
	}
	mode := r.Mode
	if mode == "" {
		mode = engine.SearchHybrid
	}
	parts := []string{strconv.Itoa(limit) + " passages", mode}
	if mode == engine.SearchHybrid {
		fusion := r.Fusion
		if fusion == "" {
			fusion = engine.FusionRRF
		}
		switch {
		case fusion == engine.FusionAlpha && r.Alpha != nil:
			fusion += " " + formatFloat(*r.Alpha)
		case fusion == engine.FusionRRF && r.RRFK != 0:
			fusion += " k=" + strconv.Itoa(r.RRFK)
		}
		parts = append(parts, fusion+" fusion")
	}
	if r.MinScore > 0 {
		parts = append(parts, "min score "+formatFloat(r.MinScore))
	}
	if r.Rerank {
		parts = append(parts, "reranked")
	}
	return strings.Join(parts, ", ")
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// showAssistants serves GET /assistants to everyone signed in.
func (s *Server) showAssistants(c *gin.Context) {
	ctx := c.Request.Context()
	all, err := s.deps.Store.ListAssistants(ctx)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The assistants could not be loaded; please try again in a minute."))
		return
	}
	page := assistantsPage{CanManage: mayManageAssistants(principalOf(c))}
	byName := func(name string) *engine.Assistant {
		for _, a := range all {
			if strings.EqualFold(a.Name, name) {
				return a
			}
		}
		return nil
	}
	for _, a := range all {
		page.Assistants = append(page.Assistants, assistantCardOf(a))
	}
	// The confirmations only speak of what is so: a saved assistant that
	// exists, a deleted one that does not.
	if a := byName(c.Query("saved")); a != nil {
		page.Saved = a.Name
	}
	if name := c.Query("deleted"); name != "" && len(name) <= 64 && byName(name) == nil {
		page.Deleted = name
	}
	if id := c.Query("delete"); id != "" && page.CanManage {
		for i := range page.Assistants {
			if page.Assistants[i].ID == id {
				page.Confirm = &page.Assistants[i]
			}
		}
		if page.Confirm == nil {
			page.Error = "That assistant does not exist any more: it may have been deleted already."
		}
	}
	v := s.newView(c, "Assistants")
	v.Nav = "assistants"
	v.Page = page
	s.render(c, http.StatusOK, "assistants", v)
}

// assistantLink serves GET /assistants/:id: the assistant in the list (a
// form posted to that address and reloaded lands here).
func (s *Server) assistantLink(c *gin.Context) {
	if mayManageAssistants(principalOf(c)) {
		redirect(c, http.StatusSeeOther, "/assistants/"+url.PathEscape(c.Param("id"))+"/edit")
		return
	}
	redirect(c, http.StatusSeeOther, "/assistants")
}

// assistantFormPage is the data of the create and edit form.
type assistantFormPage struct {
	ID             string // "" for a new assistant
	Action         string
	Form           assistantFormValues
	Errors         map[string]string // by field name
	ErrorList      []assistantFieldError
	Error          string // what failed that is no field's fault
	KnowledgeBases []assistantKBOption
	KBError        string
	ToolsEditable  bool
	Tools          []assistantToolOption // the choices (admins) or the assistant's tools (editors)
	ToolsNotice    string
	Platforms      []string
	Triggers       []assistantChoice
	ToolModes      []string
	SearchModes    []assistantChoice
	Fusions        []assistantChoice
}

// assistantFormValues are the form's fields as typed, so that a form with
// a mistake comes back with everything in it.
type assistantFormValues struct {
	Name            string
	Description     string
	SystemPrompt    string
	Model           string
	Temperature     string
	MaxOutputTokens string
	KnowledgeBases  []string
	Tools           []string          // checked
	ToolPolicy      map[string]string // tool_policy.<tool>
	ToolsOther      string            // "name [mode]" per line
	Bindings        []assistantBindingRow
	Limit           string
	Mode            string
	Fusion          string
	Alpha           string
	RRFK            string
	MinScore        string
	Rerank          bool
	IsDefault       bool
}

type assistantBindingRow struct {
	Number    int // 1-based, for labels
	Platform  string
	Channel   string
	Trigger   string
	Error     string
	Platforms []string // the choices: the known platforms, and this row's if it is another
}

type assistantKBOption struct {
	Name        string
	Description string
	Checked     bool
	Missing     bool // the assistant names it, but it does not exist
}

type assistantToolOption struct {
	Name        string
	Description string
	Note        string // why it may not run, e.g. not enabled
	Checked     bool
	Mode        string
}

type assistantFieldError struct {
	ID      string // the element to jump to
	Message string
}

// assistantFields are the form's fields in page order, with the id of the
// element an error links to (the bindings' errors are listed by row).
var assistantFields = []struct{ name, id string }{
	{"name", "field-name"}, {"description", "field-description"}, {"system_prompt", "field-system-prompt"},
	{"model", "field-model"}, {"temperature", "field-temperature"}, {"max_output_tokens", "field-max-output-tokens"},
	{"knowledge_bases", "knowledge-bases"}, {"tools", "tools"}, {"tools_other", "field-tools-other"},
	{"retrieval.limit", "field-retrieval-limit"}, {"retrieval.mode", "field-retrieval-mode"},
	{"retrieval.fusion", "field-retrieval-fusion"}, {"retrieval.alpha", "field-retrieval-alpha"},
	{"retrieval.rrf_k", "field-retrieval-rrf-k"}, {"retrieval.min_score", "field-retrieval-min-score"},
}

// assistantValuesOf fills the form from a stored assistant.
func assistantValuesOf(a *engine.Assistant) assistantFormValues {
	v := assistantFormValues{
		Name: a.Name, Description: a.Description, SystemPrompt: a.SystemPrompt, Model: a.Model,
		Temperature: formatFloat(a.Temperature), KnowledgeBases: slices.Clone(a.KnowledgeBases),
		Tools: slices.Clone(a.Tools), ToolPolicy: map[string]string{},
		Mode: a.Retrieval.Mode, Fusion: a.Retrieval.Fusion, Rerank: a.Retrieval.Rerank, IsDefault: a.IsDefault,
	}
	for _, t := range a.Tools {
		v.ToolPolicy[t] = string(a.ToolModeFor(t))
	}
	if a.MaxOutputTokens != 0 {
		v.MaxOutputTokens = strconv.Itoa(a.MaxOutputTokens)
	}
	if a.Retrieval.Limit != 0 {
		v.Limit = strconv.Itoa(a.Retrieval.Limit)
	}
	if a.Retrieval.Alpha != nil {
		v.Alpha = formatFloat(*a.Retrieval.Alpha)
	}
	if a.Retrieval.RRFK != 0 {
		v.RRFK = strconv.Itoa(a.Retrieval.RRFK)
	}
	if a.Retrieval.MinScore != 0 {
		v.MinScore = formatFloat(a.Retrieval.MinScore)
	}
	for _, b := range a.Bindings {
		v.Bindings = append(v.Bindings, assistantBindingRow{Platform: string(b.Platform), Channel: b.ChannelID, Trigger: string(b.Trigger)})
	}
	return v
}

// assistantValuesFrom reads the posted form as typed.
func assistantValuesFrom(form url.Values) assistantFormValues {
	v := assistantFormValues{
		Name: form.Get("name"), Description: form.Get("description"),
		SystemPrompt: strings.ReplaceAll(form.Get("system_prompt"), "\r\n", "\n"), Model: form.Get("model"),
		Temperature: form.Get("temperature"), MaxOutputTokens: form.Get("max_output_tokens"),
		KnowledgeBases: form["knowledge_bases"], Tools: form["tools"], ToolPolicy: map[string]string{},
		ToolsOther: strings.ReplaceAll(form.Get("tools_other"), "\r\n", "\n"),
		Limit:      form.Get("retrieval.limit"), Mode: form.Get("retrieval.mode"), Fusion: form.Get("retrieval.fusion"),
		Alpha: form.Get("retrieval.alpha"), RRFK: form.Get("retrieval.rrf_k"), MinScore: form.Get("retrieval.min_score"),
		Rerank: form.Get("retrieval.rerank") != "", IsDefault: form.Get("is_default") != "",
	}
	for k, vals := range form {
		if tool, ok := strings.CutPrefix(k, "tool_policy."); ok && len(vals) > 0 {
			v.ToolPolicy[tool] = vals[0]
		}
	}
	platforms, channels, triggers := form["binding_platform"], form["binding_channel"], form["binding_trigger"]
	n := max(len(platforms), len(channels), len(triggers))
	at := func(list []string, i int) string {
		if i < len(list) {
			return list[i]
		}
		return ""
	}
	for i := range n {
		row := assistantBindingRow{Platform: at(platforms, i), Channel: strings.TrimSpace(at(channels, i)), Trigger: at(triggers, i)}
		if row.Platform == "" && row.Channel == "" {
			continue // an empty row
		}
		v.Bindings = append(v.Bindings, row)
	}
	return v
}

// hasToolFields reports whether a posted form sets tools or a tool policy
// (the editors' form has none of these fields).
func hasToolFields(form url.Values) bool {
	for k := range form {
		if k == "tools" || k == "tools_other" || strings.HasPrefix(k, "tool_policy.") {
			return true
		}
	}
	return false
}

// applyAssistantForm checks the typed values and fills a, keeping its ID
// and timestamps; it returns the mistakes by field. kbs are the knowledge
// bases that exist (nil when they could not be listed: not checked); old
// is the stored assistant (nil when new), whose knowledge bases may stay
// even when missing. Tools are applied only when withTools.
func applyAssistantForm(v *assistantFormValues, a, old *engine.Assistant, kbs []*engine.KnowledgeBase, withTools bool) map[string]string {
	errs := map[string]string{}
	for _, f := range []struct{ name, value string }{
		{"name", v.Name}, {"description", v.Description}, {"system_prompt", v.SystemPrompt}, {"model", v.Model},
		{"tools_other", v.ToolsOther},
	} {
		if !utf8.ValidString(f.value) || strings.ContainsRune(f.value, 0) {
			errs[f.name] = "This field contains bytes that are not text (invalid UTF-8 or NUL): type it again."
		}
	}

	a.Name = strings.TrimSpace(v.Name)
	if errs["name"] == "" {
		if err := (&engine.Assistant{Name: a.Name}).Validate(); err != nil {
			errs["name"] = engine.ErrorMessage(err)
		}
	}
	a.Description, a.SystemPrompt, a.Model = strings.TrimSpace(v.Description), v.SystemPrompt, strings.TrimSpace(v.Model)

	a.Temperature = 0
	if t, ok := parseFormFloat(v.Temperature); !ok {
		errs["temperature"] = "Temperature must be a number from 0 to 2, such as 0.3."
	} else if t < 0 || t > 2 {
		errs["temperature"] = "Temperature " + formatFloat(t) + " is out of range: use a value from 0 to 2."
	} else {
		a.Temperature = t
	}
	a.MaxOutputTokens = 0
	if n, ok := parseFormInt(v.MaxOutputTokens); !ok || n < 0 {
		errs["max_output_tokens"] = "Max output tokens must be a whole number, 0 or more (empty: the provider's default)."
	} else {
		a.MaxOutputTokens = n
	}

	a.KnowledgeBases = []string{}
	for _, name := range v.KnowledgeBases {
		if slices.Contains(a.KnowledgeBases, name) {
			continue
		}
		exists := kbs == nil || old != nil && slices.Contains(old.KnowledgeBases, name) ||
			slices.ContainsFunc(kbs, func(kb *engine.KnowledgeBase) bool { return kb.Name == name })
		if !exists {
			errs["knowledge_bases"] = "Knowledge base \"" + name + "\" does not exist: pick one of the list."
			continue
		}
		a.KnowledgeBases = append(a.KnowledgeBases, name)
	}

	if withTools {
		tools, policy, field, msg := formTools(v)
		if msg != "" {
			errs[field] = msg
		} else {
			a.Tools, a.ToolPolicy = tools, policy
		}
	}

	a.Bindings = []engine.Binding{}
	seen := map[engine.Binding]bool{}
	for i := range v.Bindings {
		row := &v.Bindings[i]
		if row.Channel == "" {
			continue // the row is removed
		}
		b := engine.Binding{Platform: engine.Platform(row.Platform), ChannelID: row.Channel, Trigger: engine.Trigger(row.Trigger)}
		key := engine.Binding{Platform: b.Platform, ChannelID: b.ChannelID}
		switch {
		case b.Platform == "":
			row.Error = "Pick the platform of channel " + strconv.Quote(row.Channel) + "."
		case !utf8.ValidString(row.Channel) || strings.ContainsRune(row.Channel, 0):
			row.Error = "The channel id contains bytes that are not text: type it again."
		case seen[key]:
			row.Error = "This channel is bound twice: keep one row."
		default:
			if err := (&engine.Assistant{Name: "x", Bindings: []engine.Binding{b}}).Validate(); err != nil {
				row.Error = engine.ErrorMessage(err)
			}
		}
		if row.Error != "" {
			errs["bindings"] = "A channel binding is invalid: see the marked row."
			continue
		}
		seen[key] = true
		a.Bindings = append(a.Bindings, b)
	}

	var r engine.RetrievalSettings
	check := func(field string, set func(*engine.RetrievalSettings)) {
		var one engine.RetrievalSettings
		set(&one)
		if err := one.Validate(); err != nil {
			errs[field] = engine.ErrorMessage(err)
			return
		}
		set(&r)
	}
	if n, ok := parseFormInt(v.Limit); ok {
		check("retrieval.limit", func(r *engine.RetrievalSettings) { r.Limit = n })
	} else {
		errs["retrieval.limit"] = "The number of passages must be a whole number up to 50 (empty: 5)."
	}
	check("retrieval.mode", func(r *engine.RetrievalSettings) { r.Mode = v.Mode })
	check("retrieval.fusion", func(r *engine.RetrievalSettings) { r.Fusion = v.Fusion })
	if strings.TrimSpace(v.Alpha) != "" {
		if f, ok := parseFormFloat(v.Alpha); ok {
			check("retrieval.alpha", func(r *engine.RetrievalSettings) { r.Alpha = &f })
		} else {
			errs["retrieval.alpha"] = "Alpha must be a number from 0 (lexical only) to 1 (vector only), or empty for 0.5."
		}
	}
	if n, ok := parseFormInt(v.RRFK); ok {
		check("retrieval.rrf_k", func(r *engine.RetrievalSettings) { r.RRFK = n })
	} else {
		errs["retrieval.rrf_k"] = "The RRF k must be a whole number (empty: 60)."
	}
	if f, ok := parseFormFloat(v.MinScore); ok {
		check("retrieval.min_score", func(r *engine.RetrievalSettings) { r.MinScore = f })
	} else {
		errs["retrieval.min_score"] = "The minimum score must be a number from 0 to 1 (empty: no minimum)."
	}
	r.Rerank = v.Rerank
	a.Retrieval = r
	a.IsDefault = v.IsDefault
	return errs
}

// formTools reads the checked tools with their policy and the tools typed
// in the text box ("name" or "name mode" per line or comma). On a mistake
// it returns the field to blame and the message.
func formTools(v *assistantFormValues) (tools []string, policy map[string]engine.ToolMode, field, msg string) {
	tools, policy = []string{}, map[string]engine.ToolMode{}
	add := func(name, mode string) string {
		name = strings.TrimSpace(name)
		m := engine.ToolMode(strings.ToLower(strings.TrimSpace(mode)))
		switch {
		case name == "":
			return ""
		case slices.Contains(tools, name):
			return "Tool " + strconv.Quote(name) + " is listed twice."
		case !utf8.ValidString(name) || strings.ContainsRune(name, 0):
			return "A tool name contains bytes that are not text."
		case m != "" && !m.Valid():
			return "Policy " + strconv.Quote(string(m)) + " for " + name + " is unknown: use allow, ask or deny."
		}
		tools = append(tools, name)
		if m != "" && m != engine.ToolAllow {
			policy[name] = m
		}
		return ""
	}
	for _, t := range v.Tools {
		if msg := add(t, v.ToolPolicy[t]); msg != "" {
			return nil, nil, "tools", msg
		}
	}
	for line := range strings.SplitSeq(strings.ReplaceAll(v.ToolsOther, ",", "\n"), "\n") {
		fields := strings.Fields(line)
		switch len(fields) {
		case 0:
			continue
		case 1, 2:
			mode := ""
			if len(fields) == 2 {
				mode = fields[1]
			}
			if msg := add(fields[0], mode); msg != "" {
				return nil, nil, "tools_other", msg
			}
		default:
			return nil, nil, "tools_other", "Write one tool per line: its full name (such as files__read_file), then optionally allow, ask or deny; " +
				strconv.Quote(strings.TrimSpace(line)) + " has more than that."
		}
	}
	return tools, policy, "", ""
}

func parseFormFloat(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func parseFormInt(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// readAssistantForm reads a posted assistants form and checks its CSRF
// token.
func (s *Server) readAssistantForm(c *gin.Context) (url.Values, error) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxSmallBody)
	if err := c.Request.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, engine.Errorf(engine.ETOOLARGE, "The form is over %d KiB: shorten the system prompt.", maxSmallBody>>10)
		}
		return nil, engine.WrapError(engine.EINVALID, err, "The form could not be read; go back and send it again.")
	}
	if p := principalOf(c); p == nil || !equalSecret(c.Request.PostForm.Get("csrf"), p.csrf) {
		return nil, engine.Errorf(engine.EFORBIDDEN, "The form has expired or did not come from this console: reload the page and send it again.")
	}
	return c.Request.PostForm, nil
}

// newAssistantPage serves GET /assistants/new (admins and editors).
func (s *Server) newAssistantPage(c *gin.Context) {
	v := assistantValuesOf(&engine.Assistant{})
	s.renderAssistantForm(c, http.StatusOK, nil, v, nil, "")
}

// editAssistantPage serves GET /assistants/:id/edit (admins and editors).
func (s *Server) editAssistantPage(c *gin.Context) {
	a, err := s.assistantForPage(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.renderAssistantForm(c, http.StatusOK, a, assistantValuesOf(a), nil, "")
}

// assistantForPage loads the assistant of the path, with errors that send
// the user back to the list.
func (s *Server) assistantForPage(c *gin.Context) (*engine.Assistant, error) {
	a, err := s.deps.Store.AssistantByID(c.Request.Context(), c.Param("id"))
	switch {
	case engine.IsNotFound(err):
		return nil, engine.Errorf(engine.ENOTFOUND, "There is no assistant with id %q: it may have been deleted. The Assistants page lists them.", c.Param("id"))
	case err != nil:
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The assistant could not be loaded; please try again in a minute.")
	}
	return a, nil
}

// createAssistantPage serves POST /assistants (admins and editors).
func (s *Server) createAssistantPage(c *gin.Context) {
	s.saveAssistantPage(c, nil)
}

// updateAssistantPage serves POST /assistants/:id (admins and editors).
func (s *Server) updateAssistantPage(c *gin.Context) {
	old, err := s.assistantForPage(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.saveAssistantPage(c, old)
}

// saveAssistantPage creates (old == nil) or updates an assistant from the
// form: a mistake shows the form again with everything typed and the
// error next to its field; success goes back to the list.
func (s *Server) saveAssistantPage(c *gin.Context, old *engine.Assistant) {
	form, err := s.readAssistantForm(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx, p := c.Request.Context(), principalOf(c)
	v := assistantValuesFrom(form)
	a := &engine.Assistant{}
	if old != nil {
		cp := *old
		a = &cp
	}
	a.Tools, a.ToolPolicy = nil, nil
	if old != nil {
		a.Tools, a.ToolPolicy = slices.Clone(old.Tools), maps.Clone(old.ToolPolicy)
	}
	// Editors' forms carry no tool fields: the tools stay as they are. A
	// form that sets them anyway must not change them.
	withTools := mayEditTools(p) || hasToolFields(form)
	kbs, kbErr := s.deps.Store.ListKnowledgeBases(ctx)
	if kbErr != nil {
		kbs = nil
	}
	errs := applyAssistantForm(&v, a, old, kbs, withTools)
	if withTools && !mayEditTools(p) {
		if errs["tools"] != "" || errs["tools_other"] != "" {
			// Tool fields that cannot be read cannot be "unchanged".
			a.Tools = append(slices.Clone(a.Tools), "")
		}
		if err := guardTools(p, old, a, false); err != nil {
			s.fail(c, err)
			return
		}
	}
	if len(errs) == 0 {
		errs = map[string]string{}
		if err := a.Validate(); err != nil {
			s.renderAssistantForm(c, http.StatusBadRequest, old, v, errs, engine.ErrorMessage(err))
			return
		}
		if err := checkTools(a); err != nil {
			errs["tools"] = engine.ErrorMessage(err)
		}
	}
	if len(errs) > 0 {
		s.renderAssistantForm(c, http.StatusBadRequest, old, v, errs, "")
		return
	}
	event := "assistant updated"
	if old == nil {
		err, event = s.deps.Store.CreateAssistant(ctx, a), "assistant created"
	} else {
		err = s.deps.Store.UpdateAssistant(ctx, a)
	}
	switch {
	case engine.ErrorCode(err) == engine.ECONFLICT:
		s.renderAssistantForm(c, http.StatusConflict, old, v, map[string]string{"name": engine.ErrorMessage(err)}, "")
		return
	case engine.IsNotFound(err):
		s.fail(c, engine.Errorf(engine.ENOTFOUND, "The assistant was deleted while you edited it: nothing was saved."))
		return
	case err != nil:
		err = storeError(err, "The assistant could not be saved; please try again in a minute.")
		status, detail := s.describe(c, err, "")
		s.renderAssistantForm(c, status, old, v, nil, detail.Message)
		return
	}
	s.log.InfoContext(ctx, event, "assistant_id", a.ID, "assistant_name", a.Name, "user_id", p.User.ID)
	redirect(c, http.StatusSeeOther, "/assistants?saved="+url.QueryEscape(a.Name))
}

// deleteAssistantPage serves POST /assistants/:id/delete (admins and editors).
func (s *Server) deleteAssistantPage(c *gin.Context) {
	if _, err := s.readAssistantForm(c); err != nil {
		s.fail(c, err)
		return
	}
	a, err := s.assistantForPage(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	if err := s.deps.Store.DeleteAssistant(ctx, a.ID); err != nil && !engine.IsNotFound(err) {
		s.fail(c, storeError(err, "The assistant could not be deleted; please try again in a minute."))
		return
	}
	s.log.InfoContext(ctx, "assistant deleted", "assistant_id", a.ID, "assistant_name", a.Name, "user_id", principalOf(c).User.ID)
	redirect(c, http.StatusSeeOther, "/assistants?deleted="+url.QueryEscape(a.Name))
}

// renderAssistantForm shows the form for a new assistant (old == nil) or
// an existing one, with the typed values and the mistakes.
func (s *Server) renderAssistantForm(c *gin.Context, status int, old *engine.Assistant, v assistantFormValues, errs map[string]string, general string) {
	ctx, p := c.Request.Context(), principalOf(c)
	page := assistantFormPage{
		Action: "/assistants", Form: v, Errors: errs, Error: general, ToolsEditable: mayEditTools(p),
		Platforms: assistantPlatforms, Triggers: assistantTriggers, ToolModes: assistantToolModes,
		SearchModes: assistantSearchModes, Fusions: assistantFusions,
	}
	title := "New assistant"
	if old != nil {
		page.ID, page.Action, title = old.ID, "/assistants/"+url.PathEscape(old.ID), "Edit "+old.Name
	}
	for _, f := range assistantFields {
		if msg := errs[f.name]; msg != "" {
			page.ErrorList = append(page.ErrorList, assistantFieldError{ID: f.id, Message: msg})
		}
	}
	for i := range page.Form.Bindings {
		if msg := page.Form.Bindings[i].Error; msg != "" {
			page.ErrorList = append(page.ErrorList, assistantFieldError{ID: "binding-channel-" + strconv.Itoa(i), Message: "Binding " + strconv.Itoa(i+1) + ": " + msg})
		}
	}
	// One empty row to add a binding (the script adds more).
	page.Form.Bindings = append(slices.Clone(page.Form.Bindings), assistantBindingRow{Trigger: string(engine.DefaultTrigger)})
	for i := range page.Form.Bindings {
		row := &page.Form.Bindings[i]
		row.Number = i + 1
		row.Platforms = assistantPlatforms
		if row.Platform != "" && !slices.Contains(assistantPlatforms, row.Platform) {
			row.Platforms = append(slices.Clone(assistantPlatforms), row.Platform)
		}
		if row.Trigger == "" {
			row.Trigger = string(engine.DefaultTrigger)
		}
	}
	page.KnowledgeBases, page.KBError = s.assistantKBOptions(ctx, v.KnowledgeBases, old)
	if page.ToolsEditable {
		page.Tools, page.ToolsNotice = s.assistantToolOptions(ctx, v, old)
	} else if old != nil {
		for _, t := range old.Tools {
			page.Tools = append(page.Tools, assistantToolOption{Name: t, Mode: string(old.ToolModeFor(t)), Checked: true})
		}
	}
	vw := s.newView(c, title)
	vw.Nav = "assistants"
	vw.Page = page
	s.render(c, status, "assistant_form", vw)
}

// assistantKBOptions lists the knowledge bases to pick from: those that
// exist, and those the assistant names that do not any more.
func (s *Server) assistantKBOptions(ctx context.Context, checked []string, old *engine.Assistant) ([]assistantKBOption, string) {
	var opts []assistantKBOption
	msg := ""
	list, err := s.deps.Store.ListKnowledgeBases(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "list knowledge bases", "error", err)
		msg = "The knowledge bases could not be loaded, so only the assistant's own are listed; reload the page in a minute."
	}
	for _, kb := range list {
		opts = append(opts, assistantKBOption{Name: kb.Name, Description: kb.Description, Checked: slices.Contains(checked, kb.Name)})
	}
	extra := slices.Clone(checked)
	if old != nil {
		extra = append(extra, old.KnowledgeBases...)
	}
	for _, name := range extra {
		if !slices.ContainsFunc(opts, func(o assistantKBOption) bool { return o.Name == name }) {
			opts = append(opts, assistantKBOption{Name: name, Checked: slices.Contains(checked, name), Missing: err == nil})
		}
	}
	return opts, msg
}

// assistantToolOptions lists the tools an admin may tick: the enabled MCP
// tools, the built-in ones, and any the assistant has (or the form
// checked) besides, each with its policy.
func (s *Server) assistantToolOptions(ctx context.Context, v assistantFormValues, old *engine.Assistant) ([]assistantToolOption, string) {
	var (
		opts   []assistantToolOption
		notice string
	)
	states := map[string]string{}
	inventoried := false
	if s.deps.Tools == nil {
		notice = "MCP tools are not configured on this console: only the built-in tools are listed. Tools typed below are saved all the same."
	} else {
		ictx, cancel := context.WithTimeout(ctx, inventoryTimeout)
		list, err := s.deps.Tools.Inventory(ictx)
		cancel()
		if err != nil {
			s.log.WarnContext(ctx, "tool inventory", "error", err)
			notice = inventoryError(err)
		} else {
			inventoried = true
		}
		for _, t := range list {
			states[t.Name] = t.State
			if t.State == "enabled" {
				opts = append(opts, assistantToolOption{Name: t.Name, Description: t.Description})
			}
		}
	}
	for _, t := range builtinTools {
		opts = append(opts, assistantToolOption{Name: t.Name, Description: t.Description})
	}
	extra := slices.Clone(v.Tools)
	if old != nil {
		extra = append(extra, old.Tools...)
	}
	for _, name := range extra {
		if slices.ContainsFunc(opts, func(o assistantToolOption) bool { return o.Name == name }) {
			continue
		}
		o := assistantToolOption{Name: name}
		switch state, ok := states[name]; {
		case strings.HasPrefix(name, "builtin__"):
			o.Note = "no such built-in tool"
		case ok && state == "changed":
			o.Note = "changed since it was enabled: enable it again on the Tools page"
		case ok:
			o.Note = "not enabled: enable it on the Tools page"
		case inventoried:
			o.Note = "no configured MCP server offers it"
		}
		opts = append(opts, o)
	}
	for i := range opts {
		o := &opts[i]
		o.Checked = slices.Contains(v.Tools, o.Name)
		o.Mode = v.ToolPolicy[o.Name]
		if !slices.Contains(assistantToolModes, o.Mode) {
			o.Mode = string(engine.ToolAllow)
		}
	}
	return opts, notice
}
