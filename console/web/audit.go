package web

import "github.com/gin-gonic/gin"

// auditRoutes registers this area's pages and API routes.
func (s *Server) auditRoutes(pages, api *gin.RouterGroup) {}

// recordAudit records who changed what and when.
func (s *Server) recordAudit(c *gin.Context) { c.Next() }
