package web

import "github.com/gin-gonic/gin"

// knowledgeRoutes registers this area's pages and API routes.
func (s *Server) knowledgeRoutes(pages, api *gin.RouterGroup) {}
