package main

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// The seed's cast: assistants, knowledge bases, chat channels and users,
// and pools of texts the generated turns pick from. It is made here in Go,
// deterministically (a fixed random seed), and copied into temporary
// tables; the million rows are then made by the database (seed.go).

// Pool sizes.
const (
	poolQuestions = 1000 // user turns
	poolAnswers   = 1000 // answered assistant turns
	poolQuotes    = 200  // extractive answers (quoted passages)
	poolPassages  = 60   // passages per assistant with knowledge bases
)

type benchAssistant struct {
	Idx            int
	ID, Name       string
	Description    string
	Model          string
	KnowledgeBases []string
	Tools          []string
}

type benchChannel struct {
	Platform  string
	Idx       int
	ChannelID string
	Assistant int
}

type benchUser struct {
	Platform  string
	Idx       int
	UserID    string
	UserName  string
	DMChannel string
}

type consoleUser struct {
	ID, Name, DisplayName, Role string
}

type passage struct {
	Assistant int
	Idx       int
	Ref       string // engine.PassageRef as JSON
	Cite      string // engine.Citation as JSON, without its index
}

type pooled struct {
	Idx  int
	Body string
}

// world is everything the seed copies in before it generates rows.
type world struct {
	Assistants     []benchAssistant
	KnowledgeBases map[string]string // name: description
	Channels       []benchChannel
	Users          []benchUser
	ConsoleUsers   []consoleUser
	Passages       []passage
	Questions      []pooled
	Answers        []pooled
	Quotes         []pooled
	Tools          []string
	Comments       []string
	NoAnswer       string
	Errors         []string
}

// chat platforms: how many channels and users each has.
var chatPlatforms = []struct {
	Name            string
	Channels, Users int
}{{"slack", 40, 1500}, {"discord", 40, 1200}, {"mattermost", 40, 800}}

func hexID(parts ...any) string {
	sum := md5.Sum([]byte(fmt.Sprint(parts...)))
	return hex.EncodeToString(sum[:])[:26]
}

func newWorld() *world {
	rng := rand.New(rand.NewPCG(8, 2026))
	w := &world{
		KnowledgeBases: map[string]string{
			"handbook":      "Company handbook: leave, expenses, travel, equipment, security policies",
			"runbooks":      "On-call runbooks for production services",
			"product-docs":  "Product documentation as published on the docs site",
			"api-reference": "REST and webhook API reference",
		},
		Tools: []string{"github__search_issues", "github__get_pull_request", "jira__search", "grafana__query_dashboard",
			"pagerduty__list_incidents", "fetch_url", "memory__read_graph"},
		Comments: []string{"Not what I asked.", "The link in the answer is outdated.", "Too long, I just needed the command.",
			"It quoted the wrong runbook.", "Wrong environment: this is for staging.", "Great, thanks!", "Missed the second part of my question."},
		NoAnswer: "I could not find anything about that in the knowledge bases I can search. Try rephrasing, or ask in #help.",
		Errors: []string{"language model: 503 Service Unavailable: upstream overloaded",
			"language model: context deadline exceeded after 30s",
			"language model: 429 Too Many Requests: rate limit reached for requests"},
	}
	w.Assistants = []benchAssistant{
		{0, hexID("assistant/0"), "Support", "Answers customer-facing questions from the product docs and the handbook.", "gpt-4o-mini", []string{"product-docs", "handbook"}, nil},
		{1, hexID("assistant/1"), "Ops On-Call", "Helps the on-call engineer with runbooks, dashboards and incidents.", "gpt-4o", []string{"runbooks"}, []string{"grafana__query_dashboard", "pagerduty__list_incidents"}},
		{2, hexID("assistant/2"), "Dev Helper", "API reference and pull requests for developers.", "gpt-4o", []string{"api-reference"}, []string{"github__search_issues", "github__get_pull_request"}},
		{3, hexID("assistant/3"), "HR Handbook", "Leave, expenses and travel policy from the handbook.", "gpt-4o-mini", []string{"handbook"}, nil},
		{4, hexID("assistant/4"), "Sales Assist", "Product facts and pricing for the sales team.", "llama3.1:70b", []string{"product-docs"}, []string{"fetch_url"}},
		{5, hexID("assistant/5"), "General", "Chit-chat and everything without a knowledge base.", "llama3.1:8b", nil, []string{"memory__read_graph", "jira__search"}},
	}
	for _, p := range chatPlatforms {
		for i := range p.Channels {
			w.Channels = append(w.Channels, benchChannel{p.Name, i, platformID(rng, p.Name, "C"), i % len(w.Assistants)})
		}
		for i := range p.Users {
			w.Users = append(w.Users, benchUser{p.Name, i, platformID(rng, p.Name, "U"), chatName(rng, p.Name), platformID(rng, p.Name, "D")})
		}
	}
	// Console conversations (the Playground) run in the user's own channel
	// with the assistant they pick: one pseudo-channel per assistant.
	for i := range w.Assistants {
		w.Channels = append(w.Channels, benchChannel{"console", i, "", i})
	}
	for i := range 24 {
		role := "viewer"
		switch {
		case i < 3:
			role = "admin"
		case i < 10:
			role = "editor"
		}
		first, last := firstNames[i%len(firstNames)], lastNames[(i*7)%len(lastNames)]
		u := consoleUser{ID: hexID("user/", i), Name: strings.ToLower(first + "." + last[:1]), DisplayName: first + " " + last, Role: role}
		w.ConsoleUsers = append(w.ConsoleUsers, u)
		w.Users = append(w.Users, benchUser{"console", i, u.ID, u.Name, ""})
	}
	for _, a := range w.Assistants {
		if len(a.KnowledgeBases) == 0 {
			continue
		}
		for i := range poolPassages {
			kb := a.KnowledgeBases[i%len(a.KnowledgeBases)]
			title := docTitle(rng)
			doc := kb + "/" + slug(title) + ".md"
			id := hexID("passage/", a.Idx, "/", i)
			score := 0.35 + 0.6*rng.Float64()
			ref, _ := json.Marshal(map[string]any{"id": id, "knowledge_base": kb, "document": doc, "title": title, "score": math.Round(score*1e4) / 1e4})
			cite, _ := json.Marshal(map[string]any{"passage_id": id, "knowledge_base": kb, "document": doc, "title": title,
				"section": title + " › " + capitalize(pick(rng, objects)), "snippet": sentence(rng)})
			w.Passages = append(w.Passages, passage{a.Idx, i, string(ref), string(cite)})
		}
	}
	for i := range poolQuestions {
		w.Questions = append(w.Questions, pooled{i, questionText(rng)})
	}
	for i := range poolAnswers {
		w.Answers = append(w.Answers, pooled{i, answerText(rng)})
	}
	for i := range poolQuotes {
		w.Quotes = append(w.Quotes, pooled{i, quoteText(rng)})
	}
	return w
}

// bindings is the assistant's channels as engine.Binding JSON.
func (w *world) bindings(assistant int) string {
	type binding struct {
		Platform  string `json:"platform"`
		ChannelID string `json:"channel_id"`
	}
	list := []binding{}
	for _, c := range w.Channels {
		if c.Assistant == assistant && c.Platform != "console" {
			list = append(list, binding{c.Platform, c.ChannelID})
		}
	}
	b, _ := json.Marshal(list)
	return string(b)
}

const base32Upper = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
const base36Lower = "0123456789abcdefghijklmnopqrstuvwxyz"

// platformID is an id shaped like the platform's: Slack C…/U…/D… ids,
// Discord snowflakes, Mattermost 26-character ids.
func platformID(rng *rand.Rand, platform, kind string) string {
	switch platform {
	case "slack":
		b := []byte(kind + "0")
		for range 9 {
			b = append(b, base32Upper[rng.IntN(len(base32Upper))])
		}
		return string(b)
	case "discord":
		ms := int64(1_500_000_000_000 + rng.Int64N(200_000_000_000)) // 2017..2023
		return strconv.FormatInt((ms-1_420_070_400_000)<<22|rng.Int64N(1<<22), 10)
	}
	b := make([]byte, 26)
	for i := range b {
		b[i] = base36Lower[rng.IntN(len(base36Lower))]
	}
	return string(b)
}

func chatName(rng *rand.Rand, platform string) string {
	first, last := pick(rng, firstNames), pick(rng, lastNames)
	switch platform {
	case "discord":
		return strings.ToLower(pick(rng, adjectives)) + "_" + strings.ToLower(first) + strconv.Itoa(rng.IntN(100))
	case "mattermost":
		return strings.ToLower(first[:1] + last)
	}
	return first + " " + last
}

func pick(rng *rand.Rand, list []string) string { return list[rng.IntN(len(list))] }

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

func docTitle(rng *rand.Rand) string {
	switch rng.IntN(3) {
	case 0:
		return capitalize(pick(rng, gerunds)) + " " + pick(rng, objects)
	case 1:
		return capitalize(pick(rng, objects)) + " " + pick(rng, docKinds)
	}
	return "Troubleshooting " + pick(rng, objects)
}

// lengthy draws how many extra sentences a text gets: mostly few, some many.
func lengthy(rng *rand.Rand, mean float64, most int) int {
	return min(int(rng.ExpFloat64()*mean), most)
}

func questionText(rng *rand.Rand) string {
	var q string
	switch rng.IntN(6) {
	case 0:
		q = fmt.Sprintf("How do I %s %s in %s?", pick(rng, verbs), pick(rng, objects), pick(rng, places))
	case 1:
		q = fmt.Sprintf("Why does %s %s after %s?", pick(rng, objects), pick(rng, symptoms), pick(rng, events))
	case 2:
		q = fmt.Sprintf("hey, can you %s %s for the %s team?", pick(rng, verbs), pick(rng, objects), pick(rng, teams))
	case 3:
		q = fmt.Sprintf("What is the policy for %s?", pick(rng, objects))
	case 4:
		q = fmt.Sprintf("Is there a runbook for %s %s?", pick(rng, objects), pick(rng, symptoms))
	default:
		q = fmt.Sprintf("%s %s", capitalize(pick(rng, objects)), pick(rng, symptoms))
	}
	var b strings.Builder
	b.WriteString(q)
	for range lengthy(rng, 1.2, 6) {
		b.WriteString(" " + sentence(rng))
	}
	if rng.IntN(12) == 0 { // a pasted log
		b.WriteString("\n\n```\n")
		for range 3 + rng.IntN(12) {
			fmt.Fprintf(&b, "2026-11-%02dT%02d:%02d:%02dZ %s %s: %s %s\n", 1+rng.IntN(25), rng.IntN(24), rng.IntN(60), rng.IntN(60),
				pick(rng, levels), pick(rng, services), pick(rng, objects), pick(rng, symptoms))
		}
		b.WriteString("```")
	}
	return b.String()
}

func answerText(rng *rand.Rand) string {
	var b strings.Builder
	paragraphs := 2 + lengthy(rng, 1.5, 6)
	cite := 1
	for p := range paragraphs {
		if p > 0 {
			b.WriteString("\n\n")
		}
		switch {
		case p > 0 && rng.IntN(3) == 0:
			for i := range 2 + rng.IntN(5) {
				fmt.Fprintf(&b, "%d. %s %s.\n", i+1, capitalize(pick(rng, verbs)), pick(rng, objects))
			}
			b.WriteString(sentence(rng))
		case p > 0 && rng.IntN(4) == 0:
			fmt.Fprintf(&b, "```sh\nconvosphere %s --%s %s\n```", pick(rng, commands), slug(pick(rng, objects)), pick(rng, places))
		default:
			for i := range 2 + rng.IntN(4) {
				if i > 0 {
					b.WriteString(" ")
				}
				b.WriteString(sentence(rng))
			}
			if cite <= 2 && rng.IntN(2) == 0 {
				fmt.Fprintf(&b, " [%d]", cite)
				cite++
			}
		}
	}
	return b.String()
}

func quoteText(rng *rand.Rand) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Here is what the knowledge base says about %s:\n\n", pick(rng, objects))
	for i := range 1 + rng.IntN(3) {
		fmt.Fprintf(&b, "> %s %s [%d]\n\n", sentence(rng), sentence(rng), i+1)
	}
	return strings.TrimSpace(b.String())
}

func sentence(rng *rand.Rand) string {
	switch rng.IntN(5) {
	case 0:
		return fmt.Sprintf("To %s %s, open %s and %s %s.", pick(rng, verbs), pick(rng, objects), pick(rng, places), pick(rng, verbs), pick(rng, objects))
	case 1:
		return fmt.Sprintf("This usually happens when %s %s after %s.", pick(rng, objects), pick(rng, symptoms), pick(rng, events))
	case 2:
		return fmt.Sprintf("The %s team owns %s; ask them in %s if %s %s.", pick(rng, teams), pick(rng, objects), pick(rng, places), pick(rng, objects), pick(rng, symptoms))
	case 3:
		return fmt.Sprintf("Since %s, %s must be %s before %s.", pick(rng, events), pick(rng, objects), pick(rng, states), pick(rng, events))
	}
	return fmt.Sprintf("We tried to %s %s but %s %s.", pick(rng, verbs), pick(rng, objects), pick(rng, objects), pick(rng, symptoms))
}

var (
	firstNames = []string{"Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Alan", "Radia", "Guido", "Hedy",
		"Edsger", "Katherine", "Donald", "Joan", "Niklaus", "Sophie", "Tim", "Lynn", "Bjarne", "Anita", "Rob", "Mary"}
	lastNames = []string{"Lovelace", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Turing", "Perlman",
		"Rossum", "Lamarr", "Dijkstra", "Johnson", "Knuth", "Clarke", "Wirth", "Wilson", "Berners", "Conway", "Stroustrup", "Borg", "Pike", "Keller"}
	adjectives = []string{"sleepy", "quantum", "rusty", "brave", "silent", "cosmic", "lazy", "swift", "fuzzy", "clever"}
	verbs      = []string{"rotate", "reset", "configure", "deploy", "restore", "export", "rename", "archive", "enable", "disable",
		"invite", "migrate", "debug", "renew", "approve", "revoke", "scale", "back up", "monitor", "tag"}
	gerunds = []string{"rotating", "resetting", "configuring", "deploying", "restoring", "exporting", "migrating", "renewing", "approving", "scaling"}
	objects = []string{"the Slack signing secret", "my VPN certificate", "the staging database", "the billing webhook", "API tokens",
		"the on-call rotation", "expense reports", "the Kubernetes ingress", "SSO for contractors", "the release branch",
		"the Grafana dashboard", "customer exports", "the search index", "laptop encryption", "the status page", "feature flags",
		"parental leave", "the travel budget", "the Discord bot", "webhook retries", "the nightly backup", "rate limits",
		"the mobile app build", "invoice numbering", "the data retention policy", "PagerDuty escalations", "TLS certificates",
		"the analytics pipeline", "shared drives", "the payment gateway"}
	places = []string{"the admin console", "the #ops channel", "Terraform", "the HR portal", "GitHub Actions", "the staging cluster",
		"production", "the EU region", "the customer portal", "Jira", "the handbook", "the CLI"}
	symptoms = []string{"times out", "returns 502", "stops syncing", "is missing entries", "fails with permission denied",
		"uses too much memory", "keeps restarting", "shows the wrong totals", "is slow", "sends duplicate messages", "rejects valid input"}
	events = []string{"the last deploy", "the certificate renewal", "the migration to PostgreSQL 15", "the office move", "the SSO switch",
		"the weekend maintenance", "the price change", "the holiday freeze", "scaling to three replicas", "the schema change"}
	teams    = []string{"platform", "payments", "support", "people ops", "security", "data", "mobile", "growth", "infrastructure", "finance"}
	states   = []string{"approved by a manager", "rotated", "reviewed by security", "backed up", "drained", "re-indexed", "announced in #general", "signed off"}
	docKinds = []string{"overview", "FAQ", "policy", "runbook", "reference", "checklist", "guide"}
	commands = []string{"tokens rotate", "db restore", "deploy", "export", "index rebuild", "users invite", "flags set"}
	levels   = []string{"ERROR", "WARN", "INFO", "ERROR"}
	services = []string{"api-gateway", "billing-worker", "search", "auth", "webhooks", "scheduler"}
)
