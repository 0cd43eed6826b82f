package web

import "github.com/gin-gonic/gin"

// assistantRoutes registers this area's pages and API routes.
func (s *Server) assistantRoutes(pages, api *gin.RouterGroup) {}
