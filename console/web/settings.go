package web

import "github.com/gin-gonic/gin"

// settingsRoutes registers this area's pages and API routes.
func (s *Server) settingsRoutes(pages, api *gin.RouterGroup) {}
