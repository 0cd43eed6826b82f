// Package deploy holds ConvoSphere's deployment files: Kubernetes manifests
// under kubernetes/ (with docker-compose.yml and the Dockerfile at the
// repository root). It has no code; its tests check those files' structure
// against the configuration keys and commands the binaries actually have,
// since no Docker engine or cluster is available where the tests run.
package deploy
