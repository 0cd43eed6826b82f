package web

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// The OpenAPI document of the JSON API. apiOperations describes every
// /api/v1 route: who may call it, its parameters, and the Go types its
// handler really decodes and writes; buildOpenAPI turns that into an
// OpenAPI 3.1 document whose JSON Schemas are generated from those types
// (schemaGen), and openAPIRoutes serves it at GET /api/v1/openapi.json.
// TestOpenAPIRouteCoverage fails for a route missing here: document new
// routes in apiOperations.

// openAPIPath is where the document is served, without authentication: it
// describes the API and holds no data.
const openAPIPath = "/api/v1/openapi.json"

// openAPIRoutes builds the document once and registers its route. A
// document that cannot be built (a bug the tests catch) is logged and
// answered with a 500; the rest of the console still works.
func (s *Server) openAPIRoutes(r gin.IRoutes) {
	body, err := buildOpenAPI(apiOperations, openAPIOptions{Version: s.cfg.Version, SessionCookie: s.cookies.session})
	if err != nil {
		s.log.Error("build the OpenAPI document", "error", err)
		r.GET(openAPIPath, func(c *gin.Context) {
			s.failStatus(c, http.StatusInternalServerError, engine.EINTERNAL, internalMessage)
		})
		return
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	r.GET(openAPIPath, func(c *gin.Context) {
		h := c.Writer.Header()
		// It changes only when the console is upgraded or reconfigured:
		// caches keep it and revalidate with the ETag (a 304 is cheap).
		h.Set("Cache-Control", "public, no-cache")
		h.Set("ETag", etag)
		if etagMatches(c.GetHeader("If-None-Match"), etag) {
			c.Status(http.StatusNotModified)
			return
		}
		c.Data(http.StatusOK, "application/json; charset=utf-8", body)
	})
}

// apiOperation describes one route of the JSON API.
type apiOperation struct {
	Method string
	Path   string // gin's pattern: "/api/v1/assistants/:id"
	ID     string // the operationId
	Tag    string // the area, one of apiTags
	// Summary is one line; Description may say more.
	Summary     string
	Description string
	// Roles may call it; Public operations need no authentication (and
	// have no roles). RolesNote adds what the roles alone do not say.
	Roles     []engine.Role
	RolesNote string
	Public    bool
	// Params are the path parameters (every one of Path's) and the query
	// parameters.
	Params []apiParam
	// Body is a value of the type the handler decodes the request body
	// into (multipartFiles{} for file uploads); nil for no body.
	// Required lists the fields a request must send.
	Body     any
	Required []string
	// Responses are the successful answers; Errors the error statuses
	// worth documenting, with what they mean ("": the usual meaning). 401
	// (for operations that need authentication), 403 (for those some
	// roles may not call) and a default error are added.
	Responses []apiResponse
	Errors    map[int]string
}

// apiParam is a path or query parameter.
type apiParam struct {
	Name        string
	In          string // "path" or "query"
	Of          any    // a value of its type: "", 0, 0.0, false; []string{} for a repeated parameter
	Description string
	Required    bool
	Enum        []string
}

func pathParam(name, description string) apiParam {
	return apiParam{Name: name, In: "path", Of: "", Description: description, Required: true}
}

func queryParam(name string, of any, description string, enum ...string) apiParam {
	return apiParam{Name: name, In: "query", Of: of, Description: description, Enum: enum}
}

// apiResponse is one successful answer.
type apiResponse struct {
	Status      int
	Description string
	// Body is a value of the type the handler writes as JSON; csvFile{}
	// for CSV; nil for no content.
	Body any
	// Events, when set, are the server-sent events the operation answers
	// with instead when the client sends Accept: text/event-stream.
	Events []apiEvent
}

// apiEvent is one kind of server-sent event: its name and a value of the
// type of its JSON data.
type apiEvent struct {
	Name        string
	Data        any
	Description string
}

// jsonObject describes a JSON object that a handler builds as a map: each
// key with a value of the Go type it holds. A key ending in "?" is left
// out of some answers.
type jsonObject map[string]any

// multipartFiles stands for a multipart/form-data body of file parts.
type multipartFiles struct{}

// csvFile stands for a CSV (RFC 4180) answer.
type csvFile struct{}

// openAPIDocument stands for this document, in its own description.
type openAPIDocument struct{}

// Who may call an operation.
var (
	anyRole       = []engine.Role{engine.RoleAdmin, engine.RoleEditor, engine.RoleViewer}
	adminsEditors = []engine.Role{engine.RoleAdmin, engine.RoleEditor}
	adminsOnly    = []engine.Role{engine.RoleAdmin}
)

// apiTags are the areas of the API, in the order the document lists them.
var apiTags = []struct{ Name, Description string }{
	{"Chat", "Ask an assistant, as the Playground does."},
	{"Assistants", "Assistants: their prompt, model, knowledge bases, tools and channel bindings."},
	{"Tools", "The MCP servers' tools, the MCP servers, tool approvals and the tool call audit."},
	{"Knowledge", "Knowledge bases, their documents and search."},
	{"Conversations", "Conversations with their turns and traces, and their CSV export."},
	{"Analytics", "Today's traffic and the analytics of a date range."},
	{"Platforms", "The chat platforms' connection status."},
	{"Users", "Console users, their roles, invitations and linked chat identities."},
	{"API tokens", "API tokens for this API and /mcp."},
	{"Model providers", "The language-model providers (OpenAI-compatible APIs); their API keys never leave the server."},
	{"Budgets", "Token and cost budgets per assistant, channel and chat user, per UTC day or month, with their usage."},
	{"Audit", "The audit log."},
	{"API", "This document."},
}

// Descriptions of the events of a chat answer, shared by the chat and
// the approval decision.
var chatEvents = []apiEvent{
	{"status", jsonObject{"status": ""}, "What the assistant is doing, e.g. searching the knowledge base; any number of them."},
	{"delta", jsonObject{"text": ""}, "The next piece of the answer."},
	{"done", chatResponse{}, "The end: the same object as the JSON answer."},
	{"error", errorBody{}, "The end, when the turn failed: the error, with the trace and conversation ids when there are."},
}

var conversationFilters = []apiParam{
	queryParam("platform", "", "Only conversations on this platform.", "slack", "discord", "mattermost", "console"),
	queryParam("assistant", "", "Only conversations with this assistant (its id)."),
	queryParam("user", "", "Only conversations started by this platform user id (a console user's id in the Playground)."),
	queryParam("channel", "", "Only conversations in this channel (the platform's id)."),
	queryParam("from", "", "A date (YYYY-MM-DD, UTC) or an RFC 3339 time: last active at or after it."),
	queryParam("to", "", "A date (through the end of that day, UTC) or an RFC 3339 time: last active before it."),
	queryParam("feedback", "", "up (an answer rated helpful), down (rated not helpful), rated (either) or none (no rating).", "up", "down", "rated", "none"),
	queryParam("errors", "", "1: only conversations with a turn that failed, was interrupted or rejected.", "1", "0", "true", "false", "on", "off"),
}

// apiOperations describes every route under /api/v1.
var apiOperations = []apiOperation{
	// Chat.
	{
		Method: "POST", Path: "/api/v1/chat", ID: "chat", Tag: "Chat",
		Summary: "Ask an assistant a question",
		Description: "Answers as one JSON object, or as server-sent events with Accept: text/event-stream. " +
			"An answer that waits for a tool approval is not an error: its outcome is awaiting_approval and approval says what waits.",
		Roles: anyRole,
		Body:  chatRequest{}, Required: []string{"message"},
		Responses: []apiResponse{{Status: 200, Description: "The answer.", Body: chatResponse{}, Events: chatEvents}},
		Errors: map[int]string{400: "", 404: "No such assistant or conversation.", 413: "The message is over the limit.",
			415: "The body is not JSON.", 429: "Over a rate limit, or a budget of the assistant, the channel or the user is used up (outcome budget_exceeded): the message says which and when it resets; Retry-After says when to ask again.",
			503: "The language model or the database is unavailable.", 504: "The answer timed out."},
	},

	// Assistants.
	{
		Method: "GET", Path: "/api/v1/assistants", ID: "listAssistants", Tag: "Assistants",
		Summary: "List the assistants, by name", Roles: anyRole,
		Responses: []apiResponse{{Status: 200, Description: "The assistants.", Body: jsonObject{"assistants": []assistantJSON{}}}},
	},
	{
		Method: "GET", Path: "/api/v1/assistants/:id", ID: "getAssistant", Tag: "Assistants",
		Summary: "Get every field of an assistant", Roles: anyRole,
		Params:    []apiParam{pathParam("id", "The assistant's id.")},
		Responses: []apiResponse{{Status: 200, Description: "The assistant.", Body: assistantDetail{}}},
		Errors:    map[int]string{404: "No assistant has this id."},
	},
	{
		Method: "POST", Path: "/api/v1/assistants", ID: "createAssistant", Tag: "Assistants",
		Summary: "Create an assistant", Roles: adminsEditors,
		RolesNote: "Only admins may give it tools or a tool policy.",
		Body:      assistantBody{}, Required: []string{"name"},
		Responses: []apiResponse{{Status: 201, Description: "The new assistant (its address is in Location).", Body: assistantDetail{}}},
		Errors:    map[int]string{400: "", 403: "Editors may not give an assistant tools or a tool policy.", 409: "Another assistant has this name."},
	},
	{
		Method: "PUT", Path: "/api/v1/assistants/:id", ID: "replaceAssistant", Tag: "Assistants",
		Summary:     "Replace an assistant's editable fields",
		Description: "A field left out is emptied; id, created_at and updated_at may be sent back as GET returned them.",
		Roles:       adminsEditors,
		RolesNote:   "Only admins may change its tools and tool policy: an editor sends them as GET returned them.",
		Params:      []apiParam{pathParam("id", "The assistant's id.")},
		Body:        assistantBody{}, Required: []string{"name"},
		Responses: []apiResponse{{Status: 200, Description: "The assistant as saved.", Body: assistantDetail{}}},
		Errors: map[int]string{400: "", 403: "Editors may not change an assistant's tools or tool policy.",
			404: "No assistant has this id.", 409: "Another assistant has this name."},
	},
	{
		Method: "DELETE", Path: "/api/v1/assistants/:id", ID: "deleteAssistant", Tag: "Assistants",
		Summary: "Delete an assistant", Roles: adminsEditors,
		Params:    []apiParam{pathParam("id", "The assistant's id.")},
		Responses: []apiResponse{{Status: 204, Description: "Deleted."}},
		Errors:    map[int]string{404: "No assistant has this id."},
	},

	// Platforms.
	{
		Method: "GET", Path: "/api/v1/platforms", ID: "listPlatforms", Tag: "Platforms",
		Summary:     "List the chat platforms' connection state",
		Description: "As the bot last reported it: connected, reconnecting or failed (detail says why).",
		Roles:       anyRole,
		Responses:   []apiResponse{{Status: 200, Description: "The platforms.", Body: jsonObject{"platforms": []*engine.PlatformStatus{}}}},
	},

	// Tools, tool approvals, MCP servers and the tool call audit.
	{
		Method: "GET", Path: "/api/v1/tool-calls", ID: "listToolCalls", Tag: "Tools",
		Summary: "List the audit of tool calls, newest first", Roles: adminsOnly,
		Params: []apiParam{
			queryParam("assistant_id", "", "Only this assistant's calls."),
			queryParam("tool", "", "Only calls of this tool (its full name)."),
			queryParam("limit", 0, "1 to 500, default 100."),
		},
		Responses: []apiResponse{{Status: 200, Description: "The tool calls.", Body: jsonObject{"tool_calls": []*engine.ToolCallRecord{}}}},
		Errors:    map[int]string{400: ""},
	},
	{
		Method: "GET", Path: "/api/v1/tool-approvals", ID: "listToolApprovals", Tag: "Tools",
		Summary:     "List tool approvals, newest first",
		Description: "A pending approval past its expiry shows as expired.",
		Roles:       anyRole,
		RolesNote:   "Admins see every approval, the others their own console approvals.",
		Params: []apiParam{
			queryParam("status", "", "Only approvals with this status.", "pending", "approved", "rejected", "expired"),
			queryParam("limit", 0, "1 to 500, default 100."),
		},
		Responses: []apiResponse{{Status: 200, Description: "The approvals.", Body: jsonObject{"approvals": []approvalJSON{}}}},
		Errors:    map[int]string{400: ""},
	},
	{
		Method: "POST", Path: "/api/v1/tool-approvals/:id", ID: "decideToolApproval", Tag: "Tools",
		Summary: "Approve or reject the tool calls a turn waits for",
		Description: "For a turn asked in the console the answer goes on at once and the response is that of POST /api/v1/chat " +
			"(JSON, or server-sent events with Accept: text/event-stream); for one asked in a chat platform the bot goes on (202).",
		Roles:     anyRole,
		RolesNote: "Only the user who asked, or an admin, may decide.",
		Params:    []apiParam{pathParam("id", "The approval's id.")},
		Body:      decisionRequest{}, Required: []string{"decision"},
		Responses: []apiResponse{
			{Status: 200, Description: "The answer, continued (a console approval).", Body: chatResponse{}, Events: chatEvents},
			{Status: 202, Description: "The decided approval (a chat platform's approval: the bot goes on).", Body: jsonObject{"approval": approvalJSON{}}},
		},
		Errors: map[int]string{400: "A malformed body, a decision other than approve or reject, or the approval expired.",
			403: "You are neither the user who asked nor an admin.", 404: "No such approval.", 409: "It was decided already."},
	},
	{
		Method: "GET", Path: "/api/v1/tools", ID: "listTools", Tag: "Tools",
		Summary:     "List the MCP servers' tools and whether each is enabled",
		Description: "state is enabled, not enabled or changed (since it was enabled, so disabled); warning says which servers could not be reached.",
		Roles:       adminsOnly,
		Responses:   []apiResponse{{Status: 200, Description: "The tools.", Body: jsonObject{"tools": []ToolInfo{}, "warning?": ""}}},
		Errors:      map[int]string{503: "Tools are not configured, or no MCP server could be reached."},
	},
	{
		Method: "POST", Path: "/api/v1/tools/:name/enable", ID: "enableTool", Tag: "Tools",
		Summary: "Enable (pin) a tool as its server describes it now", Roles: adminsOnly,
		Params:    []apiParam{pathParam("name", "The tool's full name: server__tool.")},
		Responses: []apiResponse{{Status: 200, Description: "The tool, enabled.", Body: jsonObject{"tool": jsonObject{"name": "", "state": ""}}}},
		Errors:    map[int]string{404: "No MCP server offers this tool.", 503: "Tools are not configured."},
	},
	{
		Method: "POST", Path: "/api/v1/tools/:name/disable", ID: "disableTool", Tag: "Tools",
		Summary: "Disable a tool", Roles: adminsOnly,
		Params:    []apiParam{pathParam("name", "The tool's full name: server__tool.")},
		Responses: []apiResponse{{Status: 200, Description: "The tool, not enabled.", Body: jsonObject{"tool": jsonObject{"name": "", "state": ""}}}},
		Errors:    map[int]string{404: "The tool is not enabled.", 503: "Tools are not configured."},
	},
	{
		Method: "GET", Path: "/api/v1/tool-servers", ID: "listToolServers", Tag: "Tools",
		Summary: "List the MCP servers", Description: "env and headers values show as [redacted].", Roles: adminsOnly,
		Responses: []apiResponse{{Status: 200, Description: "The MCP servers.", Body: jsonObject{"tool_servers": []toolServerJSON{}}}},
	},
	{
		Method: "PUT", Path: "/api/v1/tool-servers/:name", ID: "putToolServer", Tag: "Tools",
		Summary: "Add or replace an MCP server",
		Description: "The name comes from the path. Secrets are write-only: an env or headers value left empty (or [redacted], as GET shows it) " +
			"keeps the stored one, and an empty url keeps the stored url. Bots and consoles pick the change up within seconds; its tools still have to be enabled.",
		Roles:  adminsOnly,
		Params: []apiParam{pathParam("name", "The server's name, the first part of its tools' names.")},
		Body:   toolServerJSON{}, Required: []string{"transport"},
		Responses: []apiResponse{{Status: 200, Description: "The server as saved, its secrets redacted.", Body: toolServerJSON{}}},
		Errors:    map[int]string{400: ""},
	},
	{
		Method: "POST", Path: "/api/v1/tool-servers/:name/test", ID: "testToolServer", Tag: "Tools",
		Summary:     "Test an MCP server's connection without saving it",
		Description: "Takes the body of PUT (stored secrets kept), connects, and lists the server's tools with their full names and state.",
		Roles:       adminsOnly,
		Params:      []apiParam{pathParam("name", "The server's name, the first part of its tools' names.")},
		Body:        toolServerJSON{}, Required: []string{"transport"},
		Responses: []apiResponse{{Status: 200, Description: "The server answered with its tools.", Body: toolServerTestResponse{}}},
		Errors: map[int]string{400: "", 502: "The server could not be reached (code tool_server_unreachable); the message says why.",
			503: "Tools are not configured."},
	},
	{
		Method: "DELETE", Path: "/api/v1/tool-servers/:name", ID: "deleteToolServer", Tag: "Tools",
		Summary: "Remove an MCP server", Roles: adminsOnly,
		Params:    []apiParam{pathParam("name", "The server's name.")},
		Responses: []apiResponse{{Status: 204, Description: "Removed."}},
		Errors:    map[int]string{404: "No MCP server has this name."},
	},

	// Knowledge.
	{
		Method: "GET", Path: "/api/v1/knowledge-bases", ID: "listKnowledgeBases", Tag: "Knowledge",
		Summary: "List the knowledge bases with their document counts", Roles: anyRole,
		Responses: []apiResponse{{Status: 200, Description: "The knowledge bases, by name.", Body: jsonObject{"knowledge_bases": []knowledgeBaseJSON{}}}},
	},
	{
		Method: "POST", Path: "/api/v1/knowledge-bases", ID: "createKnowledgeBase", Tag: "Knowledge",
		Summary: "Create an empty knowledge base", Roles: adminsEditors,
		Body: createKnowledgeBaseRequest{}, Required: []string{"name"},
		Responses: []apiResponse{{Status: 201, Description: "The new knowledge base.", Body: knowledgeBaseJSON{}}},
		Errors:    map[int]string{400: "", 409: "A knowledge base has this name."},
	},
	{
		Method: "DELETE", Path: "/api/v1/knowledge-bases/:kb", ID: "deleteKnowledgeBase", Tag: "Knowledge",
		Summary: "Delete a knowledge base, its documents and their chunks", Roles: adminsEditors,
		Params:    []apiParam{pathParam("kb", "The knowledge base's name.")},
		Responses: []apiResponse{{Status: 204, Description: "Deleted."}},
		Errors:    map[int]string{400: "The name is not a knowledge base name.", 404: "No such knowledge base.", 503: "The console runs without a knowledge service."},
	},
	{
		Method: "GET", Path: "/api/v1/knowledge-bases/:kb/documents", ID: "listDocuments", Tag: "Knowledge",
		Summary: "List a knowledge base's documents with status, chunks and error", Roles: anyRole,
		Params:    []apiParam{pathParam("kb", "The knowledge base's name.")},
		Responses: []apiResponse{{Status: 200, Description: "The documents, by name.", Body: jsonObject{"knowledge_base": "", "documents": []documentJSON{}}}},
		Errors:    map[int]string{400: "The name is not a knowledge base name.", 404: "No such knowledge base."},
	},
	{
		Method: "POST", Path: "/api/v1/knowledge-bases/:kb/documents", ID: "uploadDocuments", Tag: "Knowledge",
		Summary: "Upload documents",
		Description: "A multipart/form-data body with one part per file, under any field name. The knowledge base is created when missing. " +
			"Each file is ingested on its own: the answer is 200 with a result per file whenever the request was acceptable. " +
			"With Accept: text/event-stream the results come as server-sent events, file by file.",
		Roles:  adminsEditors,
		Params: []apiParam{pathParam("kb", "The knowledge base's name.")},
		Body:   multipartFiles{},
		Responses: []apiResponse{{Status: 200, Description: "What became of each file, in the order of the parts.", Body: uploadResponse{}, Events: []apiEvent{
			{"start", uploadStartEvent{}, "The files about to be indexed, in order."},
			{"file", uploadFileEvent{}, "One file's result, as soon as it is indexed or has failed."},
			{"done", uploadDoneEvent{}, "The end: the JSON answer with a count of files by status."},
			{"error", errorBody{}, "The end, when the upload was interrupted; the files already reported stay as reported."},
		}}},
		Errors: map[int]string{400: "No file part, a malformed body, or a reserved or invalid knowledge base name.",
			413: "Over the upload limit, or too many files.", 415: "Not multipart/form-data.", 503: "The console runs without a knowledge service."},
	},
	{
		Method: "DELETE", Path: "/api/v1/knowledge-bases/:kb/documents/:id", ID: "deleteDocument", Tag: "Knowledge",
		Summary: "Delete a document and all its chunks", Roles: adminsEditors,
		Params:    []apiParam{pathParam("kb", "The knowledge base's name."), pathParam("id", "The document's id.")},
		Responses: []apiResponse{{Status: 204, Description: "Deleted."}},
		Errors:    map[int]string{400: "The name is not a knowledge base name.", 404: "No such document in this knowledge base.", 503: "The console runs without a knowledge service."},
	},
	{
		Method: "POST", Path: "/api/v1/knowledge-bases/:kb/search", ID: "searchKnowledgeBase", Tag: "Knowledge",
		Summary:     "Search a knowledge base",
		Description: "k passages (1 to 50, default 10); the other fields tune the search like an assistant's retrieval settings.",
		Roles:       anyRole,
		Params:      []apiParam{pathParam("kb", "The knowledge base's name.")},
		Body:        searchRequest{}, Required: []string{"query"},
		Responses: []apiResponse{{Status: 200, Description: "The results in rank order and the settings applied.", Body: searchResponse{}}},
		Errors:    map[int]string{400: "", 404: "No such knowledge base.", 503: "The console runs without a knowledge service."},
	},
	{
		Method: "GET", Path: "/api/v1/knowledge/search", ID: "searchKnowledge", Tag: "Knowledge",
		Summary:     "The search tester: search knowledge bases with each passage's per-signal scores",
		Description: "Takes the query string of the tester page (/knowledge/search). Every bad parameter is reported at once.",
		Roles:       anyRole,
		Params: []apiParam{
			{Name: "q", In: "query", Of: "", Description: "The query.", Required: true},
			queryParam("kb", []string{}, "A knowledge base to search; repeat it for several (at most 100). None: every knowledge base."),
			queryParam("mode", "", "hybrid (default), lexical or vector.", "hybrid", "lexical", "vector"),
			queryParam("fusion", "", "rrf (default) or alpha, for hybrid search.", "rrf", "alpha"),
			queryParam("alpha", 0.0, "Weight of the vector score in alpha fusion, 0 to 1 (default 0.5)."),
			queryParam("rrf_k", 0, "The k of reciprocal rank fusion (default 60)."),
			queryParam("limit", 0, "Passages returned, 1 to 50 (default 5)."),
			queryParam("min_score", 0.0, "Passages whose final score is below are dropped, 0 to 1."),
			queryParam("rerank", "", "1 (or true, on, yes) to rerank with the configured rerank endpoint.", "1", "0", "true", "false", "on", "off", "yes", "no"),
		},
		Responses: []apiResponse{{Status: 200, Description: "The passages, best first, with the settings asked for and applied.", Body: searchTestResponse{}}},
		Errors:    map[int]string{400: "", 404: "No such knowledge base, or none to search.", 503: "The console runs without a knowledge service."},
	},

	// Conversations.
	{
		Method: "GET", Path: "/api/v1/conversations", ID: "listConversations", Tag: "Conversations",
		Summary: "List conversations, most recently active first", Roles: anyRole,
		Params: append(slices.Clone(conversationFilters),
			queryParam("limit", 0, "1 to 200, default 50."),
			queryParam("offset", 0, "Conversations to skip (default 0)."),
		),
		Responses: []apiResponse{{Status: 200, Description: "A page of conversations; next_offset is there when another page follows.", Body: conversationList{}}},
		Errors:    map[int]string{400: ""},
	},
	{
		Method: "GET", Path: "/api/v1/conversations.csv", ID: "exportConversations", Tag: "Conversations",
		Summary: "Export conversations as CSV, one row per turn", Roles: anyRole,
		Params:    conversationFilters,
		Responses: []apiResponse{{Status: 200, Description: "The CSV (RFC 4180), streamed.", Body: csvFile{}}},
		Errors:    map[int]string{400: ""},
	},
	{
		Method: "GET", Path: "/api/v1/conversations/:id", ID: "getConversation", Tag: "Conversations",
		Summary: "Get a conversation with its turns and traces", Roles: anyRole,
		Params:    []apiParam{pathParam("id", "The conversation's id.")},
		Responses: []apiResponse{{Status: 200, Description: "The conversation, its turns in order and its traces, oldest first.", Body: conversationDetail{}}},
		Errors:    map[int]string{404: "No such conversation."},
	},

	// Analytics.
	{
		Method: "GET", Path: "/api/v1/dashboard", ID: "getDashboard", Tag: "Analytics",
		Summary: "Today's traffic (UTC), in all and per platform", Roles: anyRole,
		Responses: []apiResponse{{Status: 200, Description: "Today's traffic.", Body: dashboardResponse{}}},
	},
	{
		Method: "GET", Path: "/api/v1/analytics", ID: "getAnalytics", Tag: "Analytics",
		Summary: "Every dataset of a range of days (UTC)", Roles: anyRole,
		Params: []apiParam{
			queryParam("from", "", "The first day, YYYY-MM-DD (default: 29 days before to)."),
			queryParam("to", "", "The last day, YYYY-MM-DD (default: today)."),
			queryParam("days", 0, "Without from and to: the last 1 to 366 days up to today (default 30)."),
			queryParam("top", 0, "Rows of each top list, 1 to 100 (default 10)."),
		},
		Responses: []apiResponse{{Status: 200, Description: "The analytics.", Body: analyticsResponse{}}},
		Errors:    map[int]string{400: ""},
	},

	// Users.
	{
		Method: "GET", Path: "/api/v1/users", ID: "listUsers", Tag: "Users",
		Summary: "List the users, by name", Roles: adminsOnly,
		Responses: []apiResponse{{Status: 200, Description: "The users.", Body: usersResponse{}}},
	},
	{
		Method: "POST", Path: "/api/v1/users", ID: "createUser", Tag: "Users",
		Summary:     "Invite a user",
		Description: "Creates a user without a password (role defaults to viewer) and a one-time invitation link on which they choose it.",
		Roles:       adminsOnly,
		Body:        createUserRequest{}, Required: []string{"name"},
		Responses: []apiResponse{{Status: 201, Description: "The user and the invitation, shown once.", Body: userResponse{}}},
		Errors:    map[int]string{400: "", 409: "A user has this name."},
	},
	{
		Method: "GET", Path: "/api/v1/users/:id", ID: "getUser", Tag: "Users",
		Summary: "Get a user", Roles: adminsOnly,
		Params:    []apiParam{pathParam("id", "The user's id.")},
		Responses: []apiResponse{{Status: 200, Description: "The user.", Body: userResponse{}}},
		Errors:    map[int]string{404: "No such user."},
	},
	{
		Method: "PATCH", Path: "/api/v1/users/:id", ID: "updateUser", Tag: "Users",
		Summary:     "Change a user's role, display name or whether they are disabled",
		Description: "The fields sent change, the others stay. Disabling ends the user's sessions and their API tokens stop working at once.",
		Roles:       adminsOnly,
		Params:      []apiParam{pathParam("id", "The user's id.")},
		Body:        updateUserRequest{},
		Responses:   []apiResponse{{Status: 200, Description: "The user as saved.", Body: userResponse{}}},
		Errors:      map[int]string{400: "", 404: "No such user.", 409: "The last enabled admin cannot be demoted or disabled."},
	},
	{
		Method: "POST", Path: "/api/v1/users/:id/invite", ID: "inviteUser", Tag: "Users",
		Summary: "Make a new one-time link on which the user chooses a password", Roles: adminsOnly,
		Description: "For a lost invitation or a forgotten password; earlier unused links stop working.",
		Params:      []apiParam{pathParam("id", "The user's id.")},
		Responses:   []apiResponse{{Status: 201, Description: "The user and the invitation, shown once.", Body: userResponse{}}},
		Errors:      map[int]string{404: "No such user.", 409: "The user is disabled."},
	},
	{
		Method: "GET", Path: "/api/v1/users/:id/identities", ID: "listIdentities", Tag: "Users",
		Summary: "List the chat users linked to a user", Roles: adminsOnly,
		Params:    []apiParam{pathParam("id", "The user's id.")},
		Responses: []apiResponse{{Status: 200, Description: "The linked chat identities.", Body: identitiesResponse{}}},
		Errors:    map[int]string{404: "No such user."},
	},
	{
		Method: "POST", Path: "/api/v1/users/:id/identities", ID: "linkIdentity", Tag: "Users",
		Summary: "Link a chat user to a user", Roles: adminsOnly,
		Params: []apiParam{pathParam("id", "The user's id.")},
		Body:   linkIdentityRequest{}, Required: []string{"platform", "chat_user_id"},
		Responses: []apiResponse{
			{Status: 200, Description: "It was linked to this user already.", Body: identityResponse{}},
			{Status: 201, Description: "Linked.", Body: identityResponse{}},
		},
		Errors: map[int]string{400: "", 404: "No such user.", 409: "The chat user is linked to someone else."},
	},
	{
		Method: "DELETE", Path: "/api/v1/users/:id/identities/:platform/:chat_user_id", ID: "unlinkIdentity", Tag: "Users",
		Summary: "Unlink a chat user from a user", Roles: adminsOnly,
		Params: []apiParam{pathParam("id", "The user's id."), pathParam("platform", "slack, discord or mattermost."),
			pathParam("chat_user_id", "The platform's user id.")},
		Responses: []apiResponse{{Status: 204, Description: "Unlinked."}},
		Errors:    map[int]string{404: "No such user, or the chat user is not linked to them."},
	},
	{
		Method: "POST", Path: "/api/v1/invitations/:token", ID: "acceptInvitation", Tag: "Users",
		Summary:     "Accept an invitation: set the invited user's password",
		Description: "The token in the invitation link is the credential. Signs the user out everywhere and uses the link up.",
		Public:      true,
		Params:      []apiParam{pathParam("token", "The token of the invitation link (inv_…).")},
		Body:        acceptInvitationRequest{}, Required: []string{"password"},
		Responses: []apiResponse{{Status: 200, Description: "The password is set; sign in at sign_in.", Body: acceptInvitationResponse{}}},
		Errors: map[int]string{400: "The password breaks a rule (the message says which).", 403: "The user is disabled.",
			404: "An unknown or replaced link.", 409: "A used or expired link."},
	},

	// API tokens.
	{
		Method: "GET", Path: "/api/v1/tokens", ID: "listTokens", Tag: "API tokens",
		Summary: "List the API tokens, oldest first", Roles: adminsOnly,
		Params:    []apiParam{queryParam("user_id", "", "Only this user's tokens.")},
		Responses: []apiResponse{{Status: 200, Description: "The tokens, without their secrets.", Body: tokensResponse{}}},
	},
	{
		Method: "POST", Path: "/api/v1/tokens", ID: "createToken", Tag: "API tokens",
		Summary: "Create an API token acting as you", Roles: adminsOnly,
		Body: createTokenRequest{}, Required: []string{"name"},
		Responses: []apiResponse{{Status: 201, Description: "The token and its secret, shown once.", Body: createTokenResponse{}}},
		Errors:    map[int]string{400: ""},
	},
	{
		Method: "DELETE", Path: "/api/v1/tokens/:id", ID: "revokeToken", Tag: "API tokens",
		Summary: "Revoke an API token (any user's)", Roles: adminsOnly,
		Params:    []apiParam{pathParam("id", "The token's id.")},
		Responses: []apiResponse{{Status: 204, Description: "Revoked: it stops working at once."}},
		Errors:    map[int]string{404: "No such token."},
	},

	// Model providers.
	{
		Method: "GET", Path: "/api/v1/model-providers", ID: "listModelProviders", Tag: "Model providers",
		Summary: "List the language-model providers, by name", Roles: adminsOnly,
		Responses: []apiResponse{{Status: 200, Description: "The providers, never their API keys.", Body: providersResponse{}}},
		Errors:    map[int]string{503: "Model providers are not available in this console."},
	},
	{
		Method: "PUT", Path: "/api/v1/model-providers/:name", ID: "putModelProvider", Tag: "Model providers",
		Summary:     "Add or replace a language-model provider",
		Description: "An empty or missing api_key keeps the stored key; clear_api_key removes it. api_type defaults to openai.",
		Roles:       adminsOnly,
		Params:      []apiParam{pathParam("name", "The provider's name, the first part of its models' names (<provider>/<model>).")},
		Body:        providerRequest{},
		Responses:   []apiResponse{{Status: 200, Description: "The provider as saved.", Body: providerJSON{}}},
		Errors:      map[int]string{400: "", 503: "Model providers are not available in this console."},
	},
	{
		Method: "DELETE", Path: "/api/v1/model-providers/:name", ID: "deleteModelProvider", Tag: "Model providers",
		Summary: "Delete a language-model provider", Roles: adminsOnly,
		Params:    []apiParam{pathParam("name", "The provider's name.")},
		Responses: []apiResponse{{Status: 204, Description: "Deleted."}},
		Errors:    map[int]string{404: "No provider has this name.", 503: "Model providers are not available in this console."},
	},
	{
		Method: "POST", Path: "/api/v1/model-providers/:name/test", ID: "testModelProvider", Tag: "Model providers",
		Summary:     "Test a provider's connection: list the models its API serves",
		Description: "Takes the body of PUT, and uses the api_key given or else the stored one.",
		Roles:       adminsOnly,
		Params:      []apiParam{pathParam("name", "The provider's name.")},
		Body:        providerRequest{},
		Responses:   []apiResponse{{Status: 200, Description: "The provider answered with its models.", Body: providerTestResponse{}}},
		Errors: map[int]string{400: "", 502: "The provider did not answer as expected (code provider_unreachable); the message says how.",
			503: "Model providers are not available in this console."},
	},

	// Budgets.
	{
		Method: "GET", Path: "/api/v1/budgets", ID: "listBudgets", Tag: "Budgets",
		Summary:     "List the budgets with their usage this period",
		Description: "Ordered by scope, target, period and id. Usage counts the tokens of the finished turns since the period began (UTC) and may be a few seconds old; cost_usd prices the models of console.model_prices.",
		Roles:       anyRole,
		Responses:   []apiResponse{{Status: 200, Description: "The budgets.", Body: budgetsResponse{}}},
		Errors:      map[int]string{503: "The database is unavailable."},
	},
	{
		Method: "POST", Path: "/api/v1/budgets", ID: "createBudget", Tag: "Budgets",
		Summary: "Create a budget",
		Description: "target is an assistant's id or name (stored as its id), \"<platform>:<channel id>\" or \"<platform>:<user id>\". " +
			"Set max_tokens, max_cost_usd (US dollars) or both; action is refuse (the default) or fallback with a fallback_model.",
		Roles: adminsOnly,
		Body:  budgetRequest{}, Required: []string{"scope", "target", "period"},
		Responses: []apiResponse{{Status: 201, Description: "The new budget, with its usage.", Body: budgetJSON{}}},
		Errors:    map[int]string{400: "An invalid budget or an unknown assistant (the message says which)."},
	},
	{
		Method: "PUT", Path: "/api/v1/budgets/:id", ID: "replaceBudget", Tag: "Budgets",
		Summary: "Replace a budget's fields", Description: "Takes the body of POST; a field left out is emptied.",
		Roles:  adminsOnly,
		Params: []apiParam{pathParam("id", "The budget's id.")},
		Body:   budgetRequest{}, Required: []string{"scope", "target", "period"},
		Responses: []apiResponse{{Status: 200, Description: "The budget as saved, with its usage.", Body: budgetJSON{}}},
		Errors:    map[int]string{400: "", 404: "No budget has this id."},
	},
	{
		Method: "DELETE", Path: "/api/v1/budgets/:id", ID: "deleteBudget", Tag: "Budgets",
		Summary: "Delete a budget", Roles: adminsOnly,
		Params:    []apiParam{pathParam("id", "The budget's id.")},
		Responses: []apiResponse{{Status: 204, Description: "Deleted: its turns are no longer limited."}},
		Errors:    map[int]string{404: "No budget has this id."},
	},

	// Audit.
	{
		Method: "GET", Path: "/api/v1/audit", ID: "listAudit", Tag: "Audit",
		Summary: "List the audit log, newest first", Roles: adminsOnly,
		Params: []apiParam{
			queryParam("actor", "", "A console user's id, or a whole name (any case); for failed sign-ins, the name tried."),
			queryParam("action", "", "An action or its beginning, e.g. assistant."),
			queryParam("target", "", "Part of the target (any case)."),
			queryParam("from", "", "A date (YYYY-MM-DD, UTC) or an RFC 3339 time: entries at or after it."),
			queryParam("to", "", "A date (through the end of that day, UTC) or an RFC 3339 time: entries before it."),
			queryParam("failures", "", "true: only refused or failed requests (status 400 or more).", "true", "false", "1", "0", "on", "off", "yes", "no"),
			queryParam("limit", 0, "1 to 500, default 100."),
			queryParam("offset", 0, "Entries to skip (default 0)."),
		},
		Responses: []apiResponse{{Status: 200, Description: "A page of entries; next_offset is there when more match.", Body: auditListResponse{}}},
		Errors:    map[int]string{400: ""},
	},

	// This document.
	{
		Method: "GET", Path: openAPIPath, ID: "getOpenAPI", Tag: "API",
		Summary: "This OpenAPI document", Description: "It describes the API and holds no data.", Public: true,
		Responses: []apiResponse{
			{Status: 200, Description: "The OpenAPI 3.1 document (with an ETag; If-None-Match gets a 304).", Body: openAPIDocument{}},
			{Status: 304, Description: "Not modified since the ETag sent in If-None-Match."},
		},
	},
}

// openAPIOptions are what the document says about this console.
type openAPIOptions struct {
	Version       string // the console's version; "dev" when empty
	SessionCookie string // the session cookie's name
}

// Standard meanings of the error statuses.
var errorMeanings = map[int]string{
	400: "The request is invalid: the message says which field and why.",
	401: "Authentication is missing or invalid.",
	403: "Your role may not do this.",
	404: "Not found.",
	409: "A conflict with the current state.",
	413: "The request body is too large.",
	415: "The body's media type is not accepted.",
	503: "A dependency is unavailable; try again in a minute.",
	504: "It timed out.",
}

// buildOpenAPI builds the OpenAPI 3.1 document of ops as JSON.
// Every inconsistency it finds (a path parameter left undescribed, a type
// with no JSON form, a repeated operation id) is an error.
func buildOpenAPI(ops []apiOperation, opt openAPIOptions) ([]byte, error) {
	g := newSchemaGen()
	var errs []error
	fail := func(op apiOperation, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s %s: %s", op.Method, op.Path, fmt.Sprintf(format, args...)))
	}
	tags := map[string]bool{}
	doc := oasDocument{OpenAPI: "3.1.0", Paths: map[string]map[string]*oasOperation{}}
	for _, t := range apiTags {
		tags[t.Name] = true
		doc.Tags = append(doc.Tags, oasTag{Name: t.Name, Description: t.Description})
	}
	doc.Info = oasInfo{
		Title:   "ConvoSphere console API",
		Version: cmp.Or(opt.Version, "dev"),
		Description: "The JSON API of the ConvoSphere console: every console action. Authenticate with an API token " +
			"(Authorization: Bearer cs_…), or, from the console's own pages, with the session cookie and the X-CSRF-Token header. " +
			"Errors are {\"error\": {\"code\", \"message\"}}. x-roles lists the roles that may call an operation.",
	}
	ids := map[string]bool{}
	for _, op := range ops {
		if ids[op.ID] || op.ID == "" {
			fail(op, "operationId %q is empty or used twice", op.ID)
		}
		ids[op.ID] = true
		if !tags[op.Tag] {
			fail(op, "tag %q is not one of apiTags", op.Tag)
		}
		if op.Public == (len(op.Roles) > 0) {
			fail(op, "an operation is either public or has roles")
		}
		path, pathParams := openAPIPathOf(op.Path)
		method := strings.ToLower(op.Method)
		if doc.Paths[path] == nil {
			doc.Paths[path] = map[string]*oasOperation{}
		}
		if doc.Paths[path][method] != nil {
			fail(op, "described twice")
		}
		o := &oasOperation{OperationID: op.ID, Summary: op.Summary, Tags: []string{op.Tag},
			Responses: map[string]*oasResponse{}, Security: []map[string][]string{}}
		doc.Paths[path][method] = o

		var desc []string
		if op.Description != "" {
			desc = append(desc, op.Description)
		}
		if op.Public {
			desc = append(desc, "No authentication.")
		} else {
			o.Security = []map[string][]string{{"bearerAuth": {}}, {"cookieAuth": {}, "csrfToken": {}}}
			o.Roles = op.Roles
			names := make([]string, len(op.Roles))
			for i, r := range op.Roles {
				names[i] = string(r)
			}
			desc = append(desc, "Roles: "+strings.Join(names, ", ")+".")
		}
		if op.RolesNote != "" {
			desc = append(desc, op.RolesNote)
		}
		o.Description = strings.Join(desc, " ")

		seen := map[string]bool{}
		for _, p := range op.Params {
			if p.In != "path" && p.In != "query" || p.Description == "" {
				fail(op, "parameter %q needs In (path or query) and a description", p.Name)
			}
			if p.In == "path" && !slices.Contains(pathParams, p.Name) {
				fail(op, "path parameter %q is not in the path", p.Name)
			}
			if seen[p.In+" "+p.Name] {
				fail(op, "parameter %q is described twice", p.Name)
			}
			seen[p.In+" "+p.Name] = true
			s := g.schemaOf(p.Of, decodeMode)
			for _, e := range p.Enum {
				s.Enum = append(s.Enum, e)
			}
			o.Parameters = append(o.Parameters, oasParameter{Name: p.Name, In: p.In, Required: p.Required || p.In == "path",
				Description: p.Description, Schema: s})
		}
		for _, name := range pathParams {
			if !seen["path "+name] {
				fail(op, "path parameter %q is not described", name)
			}
		}

		switch body := op.Body.(type) {
		case nil:
			if len(op.Required) > 0 {
				fail(op, "required fields without a body")
			}
		case multipartFiles:
			o.RequestBody = &oasRequestBody{Required: true, Content: map[string]oasMedia{"multipart/form-data": {Schema: &jsonSchema{
				Type:        "object",
				Description: "One part per file, under any field name, each with a file name; parts without a file name are ignored.",
				Properties: map[string]*jsonSchema{"file": {Type: "array", Items: &jsonSchema{Type: "string", ContentMediaType: "application/octet-stream"},
					Description: "The files (any field name will do)."}},
			}}}}
		default:
			s := g.schemaOf(body, decodeMode)
			if err := g.require(s, op.Required); err != nil {
				fail(op, "%v", err)
			}
			o.RequestBody = &oasRequestBody{Required: true, Content: map[string]oasMedia{"application/json": {Schema: s}}}
		}

		for _, r := range op.Responses {
			key := strconv.Itoa(r.Status)
			if o.Responses[key] != nil || r.Description == "" {
				fail(op, "response %d is described twice or without a description", r.Status)
			}
			resp := &oasResponse{Description: r.Description}
			switch r.Body.(type) {
			case nil:
			case csvFile:
				resp.Content = map[string]oasMedia{"text/csv": {Schema: &jsonSchema{Type: "string", Description: "CSV (RFC 4180) with a header row."}}}
			case openAPIDocument:
				resp.Content = map[string]oasMedia{"application/json": {Schema: &jsonSchema{Type: "object", Description: "An OpenAPI 3.1 document."}}}
			default:
				resp.Content = map[string]oasMedia{"application/json": {Schema: g.schemaOf(r.Body, encodeMode)}}
			}
			if len(r.Events) > 0 {
				if resp.Content == nil {
					resp.Content = map[string]oasMedia{}
				}
				m := oasMedia{Schema: &jsonSchema{Type: "string", Description: "Server-sent events (send Accept: text/event-stream): " +
					"each has an event line and one data line of JSON; comment lines keep an idle stream open. x-events describes them."}}
				for _, e := range r.Events {
					m.Events = append(m.Events, oasEvent{Event: e.Name, Description: e.Description, Schema: g.schemaOf(e.Data, encodeMode)})
				}
				resp.Content["text/event-stream"] = m
			}
			o.Responses[key] = resp
		}
		if len(op.Responses) == 0 {
			fail(op, "no response described")
		}
		errStatuses := map[int]string{}
		for status, meaning := range op.Errors {
			errStatuses[status] = meaning
		}
		if !op.Public {
			errStatuses[401] += ""
			if len(op.Roles) < len(anyRole) {
				errStatuses[403] += ""
			}
		}
		for status, meaning := range errStatuses {
			if status < 400 || status > 599 {
				fail(op, "error status %d is not an error", status)
			}
			if meaning == "" {
				meaning = errorMeanings[status]
			}
			if status == 403 && len(op.Roles) < len(anyRole) && !op.Public {
				meaning = strings.TrimSpace(meaning + " Only these roles may call it: " + roleList(op.Roles) + ".")
			}
			o.Responses[strconv.Itoa(status)] = &oasResponse{Description: meaning,
				Content: map[string]oasMedia{"application/json": {Schema: g.schemaOf(errorBody{}, encodeMode)}}}
		}
		o.Responses["default"] = &oasResponse{Description: "Any other error, in the same form.",
			Content: map[string]oasMedia{"application/json": {Schema: g.schemaOf(errorBody{}, encodeMode)}}}
	}
	errs = append(errs, g.errs...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	doc.Components = oasComponents{
		Schemas: g.components,
		SecuritySchemes: map[string]oasSecurityScheme{
			"bearerAuth": {Type: "http", Scheme: "bearer",
				Description: "An API token (cs_…) from `console token create` or the Settings page; it acts as its user."},
			"cookieAuth": {Type: "apiKey", In: "cookie", Name: opt.SessionCookie,
				Description: "The console's session cookie, for its own pages; requests with it need the X-CSRF-Token header too."},
			"csrfToken": {Type: "apiKey", In: "header", Name: "X-CSRF-Token",
				Description: "The signed-in page's CSRF token, sent with the session cookie."},
		},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode the OpenAPI document: %w", err)
	}
	return buf.Bytes(), nil
}

func roleList(roles []engine.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// openAPIPathOf turns gin's pattern into an OpenAPI path
// ("/users/:id" → "/users/{id}") and lists its parameters.
func openAPIPathOf(pattern string) (string, []string) {
	segs := strings.Split(pattern, "/")
	var params []string
	for i, s := range segs {
		if len(s) > 1 && (s[0] == ':' || s[0] == '*') {
			params = append(params, s[1:])
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/"), params
}

// The document's objects (OpenAPI 3.1).
type (
	oasDocument struct {
		OpenAPI    string                              `json:"openapi"`
		Info       oasInfo                             `json:"info"`
		Tags       []oasTag                            `json:"tags"`
		Paths      map[string]map[string]*oasOperation `json:"paths"`
		Components oasComponents                       `json:"components"`
	}
	oasInfo struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description"`
	}
	oasTag struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	oasOperation struct {
		OperationID string                  `json:"operationId"`
		Summary     string                  `json:"summary"`
		Description string                  `json:"description,omitempty"`
		Tags        []string                `json:"tags"`
		Parameters  []oasParameter          `json:"parameters,omitempty"`
		RequestBody *oasRequestBody         `json:"requestBody,omitempty"`
		Responses   map[string]*oasResponse `json:"responses"`
		// Security is empty (not absent) for public operations.
		Security []map[string][]string `json:"security"`
		Roles    []engine.Role         `json:"x-roles,omitempty"`
	}
	oasParameter struct {
		Name        string      `json:"name"`
		In          string      `json:"in"`
		Required    bool        `json:"required,omitempty"`
		Description string      `json:"description"`
		Schema      *jsonSchema `json:"schema"`
	}
	oasRequestBody struct {
		Required bool                `json:"required"`
		Content  map[string]oasMedia `json:"content"`
	}
	oasResponse struct {
		Description string              `json:"description"`
		Content     map[string]oasMedia `json:"content,omitempty"`
	}
	oasMedia struct {
		Schema *jsonSchema `json:"schema"`
		Events []oasEvent  `json:"x-events,omitempty"`
	}
	oasEvent struct {
		Event       string      `json:"event"`
		Description string      `json:"description"`
		Schema      *jsonSchema `json:"schema"`
	}
	oasComponents struct {
		Schemas         map[string]*jsonSchema       `json:"schemas"`
		SecuritySchemes map[string]oasSecurityScheme `json:"securitySchemes"`
	}
	oasSecurityScheme struct {
		Type        string `json:"type"`
		Scheme      string `json:"scheme,omitempty"`
		In          string `json:"in,omitempty"`
		Name        string `json:"name,omitempty"`
		Description string `json:"description"`
	}
)

// jsonSchema is the part of JSON Schema (2020-12, as OpenAPI 3.1 uses it)
// that the generated schemas need. The zero value is {}: any value.
type jsonSchema struct {
	Ref                  string                 `json:"$ref,omitempty"`
	Type                 any                    `json:"type,omitempty"` // a type name, or a list of them
	Format               string                 `json:"format,omitempty"`
	Description          string                 `json:"description,omitempty"`
	Enum                 []any                  `json:"enum,omitempty"`
	Minimum              *float64               `json:"minimum,omitempty"`
	Properties           map[string]*jsonSchema `json:"properties,omitempty"`
	Required             []string               `json:"required,omitempty"`
	AdditionalProperties *jsonSchema            `json:"additionalProperties,omitempty"`
	Items                *jsonSchema            `json:"items,omitempty"`
	AnyOf                []*jsonSchema          `json:"anyOf,omitempty"`
	ContentEncoding      string                 `json:"contentEncoding,omitempty"`
	ContentMediaType     string                 `json:"contentMediaType,omitempty"`
}

// schemaMode says which way a schema describes JSON.
type schemaMode int

const (
	// encodeMode describes what the server writes: a field is required
	// unless omitempty or omitzero may leave it out.
	encodeMode schemaMode = iota
	// decodeMode describes what the server reads: encoding/json accepts
	// any field left out, so none is required (apiOperation.Required
	// names those the handler insists on). Its components are named
	// "…Input" unless the type's name ends in Request or Body.
	decodeMode
)

// schemaGen generates JSON Schemas from Go types by the rules of
// encoding/json: json tags, omitempty and omitzero, embedded structs
// (with Go's rules for hidden fields), pointers as nullable, time.Time as
// a date-time string, json.RawMessage and interfaces as any value, []byte
// as base64, maps as objects with additionalProperties, slices and arrays
// as arrays. Named struct types become components, referenced with $ref
// (so recursive types are fine); other types are inlined. Types with no
// JSON form, and types with a MarshalJSON of their own, are errors.
type schemaGen struct {
	components map[string]*jsonSchema
	names      map[schemaKey]string
	errs       []error
}

type schemaKey struct {
	t    reflect.Type
	mode schemaMode
}

func newSchemaGen() *schemaGen {
	return &schemaGen{components: map[string]*jsonSchema{}, names: map[schemaKey]string{}}
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	rawMessageType    = reflect.TypeFor[json.RawMessage]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	jsonObjectType    = reflect.TypeFor[jsonObject]()
)

// schemaEnums are the values of the engine's string (and number) types
// that have a fixed set of them.
var schemaEnums = map[reflect.Type][]any{
	reflect.TypeFor[engine.Role]():           enumOf(engine.RoleAdmin, engine.RoleEditor, engine.RoleViewer),
	reflect.TypeFor[engine.Platform]():       enumOf(engine.PlatformSlack, engine.PlatformDiscord, engine.PlatformMattermost, engine.PlatformConsole),
	reflect.TypeFor[engine.ToolMode]():       enumOf(engine.ToolAllow, engine.ToolAsk, engine.ToolDeny),
	reflect.TypeFor[engine.ApprovalStatus](): enumOf(engine.ApprovalPending, engine.ApprovalApproved, engine.ApprovalRejected, engine.ApprovalExpired),
	reflect.TypeFor[engine.DocumentStatus](): enumOf(engine.DocumentPending, engine.DocumentIndexed, engine.DocumentFailed),
	reflect.TypeFor[engine.TurnRole]():       enumOf(engine.TurnUser, engine.TurnAssistant),
	reflect.TypeFor[engine.Trigger]():        enumOf(engine.TriggerMention, engine.TriggerThread, engine.TriggerAll),
	reflect.TypeFor[engine.Outcome](): enumOf(engine.OutcomeAnswered, engine.OutcomeExtractive, engine.OutcomeNoAnswer,
		engine.OutcomeInterrupted, engine.OutcomeFailed, engine.OutcomeRejected, engine.OutcomeAwaiting, engine.OutcomeRateLimited, engine.OutcomeBudgetExceeded),
	reflect.TypeFor[engine.BudgetScope]():  enumOf(engine.BudgetScopeAssistant, engine.BudgetScopeChannel, engine.BudgetScopeUser),
	reflect.TypeFor[engine.BudgetPeriod](): enumOf(engine.BudgetDay, engine.BudgetMonth),
	reflect.TypeFor[engine.BudgetAction](): enumOf(engine.BudgetRefuse, engine.BudgetFallback),
	reflect.TypeFor[engine.Rating]():       {int(engine.RatingUp), int(engine.RatingDown)},
}

func enumOf[T ~string](values ...T) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// schemaOf returns the schema of v's type, or of a jsonObject's keys.
func (g *schemaGen) schemaOf(v any, mode schemaMode) *jsonSchema {
	if obj, ok := v.(jsonObject); ok {
		s := &jsonSchema{Type: "object", Properties: map[string]*jsonSchema{}}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			name, optional := strings.CutSuffix(k, "?")
			s.Properties[name] = g.schemaOf(obj[k], mode)
			if !optional {
				s.Required = append(s.Required, name)
			}
		}
		return s
	}
	if v == nil {
		g.errs = append(g.errs, errors.New("no type: nil"))
		return &jsonSchema{}
	}
	return g.typeSchema(reflect.TypeOf(v), mode)
}

// typeSchema returns the schema of t.
func (g *schemaGen) typeSchema(t reflect.Type, mode schemaMode) *jsonSchema {
	switch {
	case t == timeType:
		return &jsonSchema{Type: "string", Format: "date-time"}
	case t == rawMessageType:
		return &jsonSchema{} // any JSON value
	case t == jsonObjectType:
		g.errs = append(g.errs, errors.New("a jsonObject inside a Go type: use a struct"))
		return &jsonSchema{}
	case t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface &&
		(t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonMarshalerType)):
		g.errs = append(g.errs, fmt.Errorf("%s has its own MarshalJSON: describe its JSON in schemaGen", t))
		return &jsonSchema{}
	case t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface &&
		(t.Implements(textMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType)):
		return &jsonSchema{Type: "string"}
	}
	s := &jsonSchema{}
	switch t.Kind() {
	case reflect.Bool:
		s.Type = "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s.Type = "integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		zero := 0.0
		s.Type, s.Minimum = "integer", &zero
	case reflect.Float32, reflect.Float64:
		s.Type = "number"
	case reflect.String:
		s.Type = "string"
	case reflect.Interface:
		return s // any JSON value
	case reflect.Pointer:
		return nullable(g.typeSchema(t.Elem(), mode))
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 &&
			!t.Elem().Implements(jsonMarshalerType) && !t.Elem().Implements(textMarshalerType) {
			return &jsonSchema{Type: "string", ContentEncoding: "base64"}
		}
		s.Type, s.Items = "array", g.typeSchema(t.Elem(), mode)
	case reflect.Map:
		switch t.Key().Kind() {
		case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		default:
			if !t.Key().Implements(textMarshalerType) {
				g.errs = append(g.errs, fmt.Errorf("%s: encoding/json cannot encode map keys of type %s", t, t.Key()))
			}
		}
		s.Type, s.AdditionalProperties = "object", g.typeSchema(t.Elem(), mode)
	case reflect.Struct:
		if t.Name() == "" {
			return g.structSchema(t, mode)
		}
		return &jsonSchema{Ref: "#/components/schemas/" + g.component(t, mode)}
	default:
		g.errs = append(g.errs, fmt.Errorf("%s: encoding/json cannot encode a %s", t, t.Kind()))
		return s
	}
	if enum, ok := schemaEnums[t]; ok {
		s.Enum = slices.Clone(enum)
	}
	return s
}

// component returns the name of t's component, generating it on first use.
func (g *schemaGen) component(t reflect.Type, mode schemaMode) string {
	key := schemaKey{t, mode}
	if name, ok := g.names[key]; ok {
		return name
	}
	base := componentName(t.Name())
	if mode == decodeMode && !strings.HasSuffix(base, "Request") && !strings.HasSuffix(base, "Body") {
		base += "Input"
	}
	name := base
	if _, taken := g.components[name]; taken {
		name = componentName(pkgName(t)) + base
		for i := 2; ; i++ {
			if _, taken := g.components[name]; !taken {
				break
			}
			name = fmt.Sprintf("%s%s%d", componentName(pkgName(t)), base, i)
		}
	}
	// Registered before it is built, so that a recursive type refers to
	// itself.
	s := &jsonSchema{}
	g.names[key], g.components[name] = name, s
	*s = *g.structSchema(t, mode)
	return name
}

// componentName makes a Go type name a component name: exported style,
// with only the characters OpenAPI allows.
func componentName(name string) string {
	r := []rune(name)
	if len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
	}
	for i, c := range r {
		if !(c < unicode.MaxASCII && (unicode.IsLetter(c) || unicode.IsDigit(c) || c == '.' || c == '-' || c == '_')) {
			r[i] = '_'
		}
	}
	return string(r)
}

func pkgName(t reflect.Type) string {
	p := t.PkgPath()
	return p[strings.LastIndex(p, "/")+1:]
}

// structSchema returns the object schema of a struct type.
func (g *schemaGen) structSchema(t reflect.Type, mode schemaMode) *jsonSchema {
	s := &jsonSchema{Type: "object", Properties: map[string]*jsonSchema{}}
	for _, f := range jsonFields(t) {
		var fs *jsonSchema
		if f.quoted {
			fs = &jsonSchema{Type: "string"}
			if f.typ.Kind() == reflect.Pointer {
				fs = nullable(fs)
			}
		} else {
			fs = g.typeSchema(f.typ, mode)
		}
		s.Properties[f.name] = fs
		if mode == encodeMode && !f.omitZero && !(f.omitEmpty && emptyable(f.typ)) {
			s.Required = append(s.Required, f.name)
		}
	}
	return s
}

// emptyable reports whether omitempty can leave a value of t out:
// encoding/json never finds a struct empty.
func emptyable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Struct:
		return false
	case reflect.Array:
		return t.Len() == 0
	}
	return true
}

// nullable lets s be null too.
func nullable(s *jsonSchema) *jsonSchema {
	switch typ := s.Type.(type) {
	case string:
		s.Type = []string{typ, "null"}
		if s.Enum != nil {
			s.Enum = append(s.Enum, nil)
		}
		return s
	case []string:
		return s // already nullable
	}
	if s.Ref == "" && s.AnyOf == nil {
		return s // any value, null included
	}
	return &jsonSchema{AnyOf: []*jsonSchema{s, {Type: "null"}}}
}

// require marks fields of a request body's object as required. The body
// is a component (or an inline object) that only request bodies use.
func (g *schemaGen) require(s *jsonSchema, fields []string) error {
	if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
		s = g.components[name]
	}
	if s == nil || len(fields) == 0 {
		return nil
	}
	if s.Required != nil && !slices.Equal(s.Required, fields) {
		return fmt.Errorf("the body's required fields %v differ from another operation's %v", fields, s.Required)
	}
	for _, f := range fields {
		if _, ok := s.Properties[f]; !ok {
			return fmt.Errorf("required field %q is not a field of the body", f)
		}
	}
	s.Required = slices.Clone(fields)
	return nil
}

// jsonField is a field of a struct's JSON object.
type jsonField struct {
	name      string
	index     []int
	typ       reflect.Type
	tagged    bool
	omitEmpty bool
	omitZero  bool
	quoted    bool // ",string": a number or bool written as a string
}

// jsonFields lists the fields encoding/json writes for a struct type, in
// the order it writes them: the exported fields, those of embedded
// structs promoted, and of several fields with one name the one that
// dominates (the shallowest, a tagged one first; none when that is
// ambiguous). It follows encoding/json's typeFields.
func jsonFields(t reflect.Type) []jsonField {
	type entry struct {
		typ   reflect.Type
		index []int
	}
	var (
		fields    []jsonField
		count     map[reflect.Type]int
		next      = []entry{{typ: t}}
		nextCount = map[reflect.Type]int{t: 1}
	)
	visited := map[reflect.Type]bool{}
	for len(next) > 0 {
		current := next
		next = nil
		count, nextCount = nextCount, map[reflect.Type]int{}
		for _, e := range current {
			if visited[e.typ] {
				continue
			}
			visited[e.typ] = true
			for i := range e.typ.NumField() {
				sf := e.typ.Field(i)
				if sf.Anonymous {
					ft := sf.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !validTagName(name) {
					name = ""
				}
				index := append(slices.Clone(e.index), i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					f := jsonField{name: name, index: index, typ: sf.Type, tagged: name != ""}
					if f.name == "" {
						f.name = sf.Name
					}
					for o := range strings.SplitSeq(opts, ",") {
						switch o {
						case "omitempty":
							f.omitEmpty = true
						case "omitzero":
							f.omitZero = true
						case "string":
							switch ft.Kind() {
							case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
								reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
								reflect.Float32, reflect.Float64, reflect.String:
								f.quoted = true
							}
						}
					}
					fields = append(fields, f)
					if count[e.typ] > 1 {
						// Reached through several embedded fields at one
						// depth: a duplicate makes it ambiguous below.
						fields = append(fields, f)
					}
					continue
				}
				nextCount[ft]++
				if nextCount[ft] == 1 {
					next = append(next, entry{typ: ft, index: index})
				}
			}
		}
	}
	sort.SliceStable(fields, func(i, j int) bool {
		a, b := fields[i], fields[j]
		switch {
		case a.name != b.name:
			return a.name < b.name
		case len(a.index) != len(b.index):
			return len(a.index) < len(b.index)
		case a.tagged != b.tagged:
			return a.tagged
		}
		return slices.Compare(a.index, b.index) < 0
	})
	out := fields[:0]
	for i := 0; i < len(fields); {
		j := i + 1
		for j < len(fields) && fields[j].name == fields[i].name {
			j++
		}
		group := fields[i:j]
		if len(group) == 1 || len(group[0].index) != len(group[1].index) || group[0].tagged != group[1].tagged {
			out = append(out, group[0])
		}
		i = j
	}
	sort.Slice(out, func(i, j int) bool { return slices.Compare(out[i].index, out[j].index) < 0 })
	return out
}

// validTagName reports whether encoding/json accepts name as a field name.
func validTagName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}
