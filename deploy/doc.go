// Package deploy holds the tests of what platform teams deploy — docker-compose.yml
// at the repository root and the Helm chart in deploy/helm/trailkeep — run without a
// container engine or a cluster: compose-go loads the compose file as Docker Compose
// would, Helm's SDK renders the chart, and both are held to the binaries' own
// configuration (internal/configref) so a variable a binary does not read, a secret
// in a ConfigMap or a missing probe fails here rather than at install.
package deploy
