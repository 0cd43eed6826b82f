package web

import "github.com/gin-gonic/gin"

// userRoutes registers this area's pages and API routes.
func (s *Server) userRoutes(pages, api *gin.RouterGroup) {}
