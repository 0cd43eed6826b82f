package web

import "github.com/gin-gonic/gin"

// dashboardRoutes registers this area's pages and API routes.
func (s *Server) dashboardRoutes(pages, api *gin.RouterGroup) {}
