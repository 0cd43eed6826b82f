package engine

import "time"

// Connection states of a platform adapter.
const (
	StatusConnected    = "connected"
	StatusReconnecting = "reconnecting"
	StatusFailed       = "failed" // given up until the configuration is fixed; see Detail
)

// PlatformStatus is the state of a platform's connection as a bot process
// last reported it, for the console.
type PlatformStatus struct {
	Platform  Platform  `json:"platform"`
	State     string    `json:"state"`
	Detail    string    `json:"detail,omitempty"` // why, in words for an admin
	UpdatedAt time.Time `json:"updated_at"`
}
