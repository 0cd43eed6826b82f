package web

import "github.com/gin-gonic/gin"

// conversationRoutes registers this area's pages and API routes.
func (s *Server) conversationRoutes(pages, api *gin.RouterGroup) {}
