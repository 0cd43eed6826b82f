package web

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// routes lists every route of the console: one handler per page action.
func (s *Server) routes() (*gin.Engine, error) {
	// Release mode keeps gin from printing its debug banner; gin keeps the
	// mode in a package variable, which is why it is set here and not per engine.
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	if err := r.SetTrustedProxies(s.cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("console: trusted proxies: %w", err)
	}
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.Use(s.logRequests, s.recoverPanics, s.securityHeaders, s.rejectCrossOrigin, s.recordAudit)
	r.NoRoute(s.notFound)
	r.NoMethod(s.methodNotAllowed)

	// Probes: no authentication, no dependencies for liveness.
	r.GET("/healthz", s.healthz)
	r.HEAD("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.HEAD("/readyz", s.readyz)

	r.GET("/static/*name", s.staticFile)

	// Sign-in.
	r.GET("/", s.home)
	r.GET("/login", s.showLogin)
	r.POST("/login", s.submitLogin)
	r.POST("/logout", s.logout)
	s.invitationRoutes(r) // invitations.go: invitation links, no sign-in
	s.openAPIRoutes(r)    // openapi.go: GET /api/v1/openapi.json, no sign-in

	// Pages for signed-in users.
	pages := r.Group("/", s.requirePageUser)
	pages.GET("/playground", s.showPlayground)
	pages.GET("/knowledge/:kb/documents/:id", s.showDocument)
	pages.GET("/tools", s.requireRole("The tools page", engine.RoleAdmin), s.showTools)

	// The API: bearer token, or session cookie plus X-CSRF-Token.
	api := r.Group("/api/v1", s.requireAPIUser)
	api.POST("/chat", s.chat)
	api.GET("/assistants", s.listAssistants)
	api.GET("/assistants/:id", s.getAssistant)
	// Editors manage assistants too; only admins change tools and their
	// policy (checked in the handlers).
	assistants := api.Group("/assistants", s.requireRole("Managing assistants", engine.RoleAdmin, engine.RoleEditor))
	assistants.POST("", s.createAssistant)
	assistants.PUT("/:id", s.putAssistant)
	assistants.DELETE("/:id", s.deleteAssistant)
	api.GET("/platforms", s.listPlatforms)
	api.GET("/tool-calls", s.requireRole("Reading the tool call audit", engine.RoleAdmin), s.listToolCalls)
	// Tool approvals: the asker or an admin decides (the engine checks).
	api.GET("/tool-approvals", s.listApprovals)
	api.POST("/tool-approvals/:id", s.decideApproval)
	tools := api.Group("/tools", s.requireRole("Managing tools", engine.RoleAdmin))
	tools.GET("", s.listTools)
	tools.POST("/:name/enable", s.enableTool)
	tools.POST("/:name/disable", s.disableTool)
	servers := api.Group("/tool-servers", s.requireRole("Managing MCP servers", engine.RoleAdmin))
	servers.GET("", s.listToolServers)
	servers.PUT("/:name", s.putToolServer)
	servers.DELETE("/:name", s.deleteToolServer)
	servers.POST("/:name/test", s.testToolServer)

	// Knowledge bases: anyone signed in lists and searches them; admins
	// and editors manage them.
	api.GET("/knowledge-bases", s.listKnowledgeBases)
	api.GET("/knowledge-bases/:kb/documents", s.listDocuments)
	api.POST("/knowledge-bases/:kb/search", s.searchKnowledge)
	editors := api.Group("", s.requireRole(manageKnowledge, engine.RoleAdmin, engine.RoleEditor))
	editors.POST("/knowledge-bases", s.createKnowledgeBase)
	editors.DELETE("/knowledge-bases/:kb", s.deleteKnowledgeBase)
	editors.POST("/knowledge-bases/:kb/documents", s.uploadDocuments)
	editors.DELETE("/knowledge-bases/:kb/documents/:id", s.deleteDocument)

	// MCP for other agents (IDEs, desktop assistants): knowledge search
	// and the assistants, with an API token (Authorization: Bearer).
	if s.deps.MCP != nil {
		mcp := r.Group("/mcp", s.requireAPIUser)
		h := gin.WrapH(s.deps.MCP)
		mcp.GET("", h)
		mcp.POST("", h)
		mcp.DELETE("", h)
	}

	// Each area of the console registers its pages and API routes in its
	// own file.
	s.dashboardRoutes(pages, api)    // dashboard.go
	s.assistantRoutes(pages, api)    // assistant_pages.go
	s.knowledgeRoutes(pages, api)    // knowledge_pages.go
	s.conversationRoutes(pages, api) // conversations.go
	s.analyticsRoutes(pages, api)    // analytics.go
	s.userRoutes(pages, api)         // users.go
	s.settingsRoutes(pages, api)     // settings.go
	s.auditRoutes(pages, api)        // audit.go
	s.budgetRoutes(pages, api)       // budgets.go

	return r, nil
}

// notFound answers unknown paths: JSON under /api/, a page elsewhere.
func (s *Server) notFound(c *gin.Context) {
	s.fail(c, notFoundError(c.Request.URL.Path))
}

func (s *Server) methodNotAllowed(c *gin.Context) {
	s.failStatus(c, http.StatusMethodNotAllowed, "method_not_allowed",
		fmt.Sprintf("%s is not allowed on %s; the Allow header lists the methods that are.", c.Request.Method, c.Request.URL.Path))
}
