package web

import "github.com/gin-gonic/gin"

// analyticsRoutes registers this area's pages and API routes.
func (s *Server) analyticsRoutes(pages, api *gin.RouterGroup) {}
