package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/bearer"
	"github.com/trailkeep/trailkeep/pkg/ingest"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
	"github.com/trailkeep/trailkeep/pkg/source/claudecode"
)

func newHooksCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "hooks", Short: "Connect AI coding tools to trailkeep ingest"}
	var ingestURL, tokenEnv string
	var otel bool
	var timeout int
	print := &cobra.Command{
		Use:   "print-config",
		Short: "Print the Claude Code settings.json hooks block that sends every hook event to ingest",
		Long: `Prints a settings.json fragment (merge it into ~/.claude/settings.json, .claude/settings.json
or the managed policy) with an http hook for every event, and a curl command hook for
SessionStart and Setup, which do not accept http hooks. The token is read from the
environment variable named by --token-env; use one token per person so events are
attributed to them (trailctl tokens create --actor-id ...).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var s map[string]any
			var err error
			if otel {
				s, err = otelSettings(ingestURL, tokenEnv, os.Getenv(tokenEnv))
			} else {
				s, err = claudecode.Settings(ingestURL, tokenEnv, timeout)
			}
			if err != nil {
				return usageError(err)
			}
			b, _ := json.MarshalIndent(s, "", "  ")
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
	print.Flags().StringVar(&ingestURL, "url", "", "ingest base URL (required), e.g. https://trailkeep.example.com")
	print.Flags().StringVar(&tokenEnv, "token-env", "TRAILKEEP_TOKEN", "environment variable holding the bearer token")
	print.Flags().IntVar(&timeout, "timeout", 5, "seconds Claude Code waits for ingest per event")
	print.Flags().BoolVar(&otel, "otel", false, "print the telemetry environment block instead (OTLP logs to /v1/logs), with the token read from --token-env")
	print.MarkFlagRequired("url")
	cmd.AddCommand(print)
	return cmd
}

func newTokensCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Short: "Create ingest write tokens and query API tokens"}
	var t ingest.Token
	var actorType, actorID, actorEmail string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a random bearer token; prints the secret once and the entry for the ingest token file",
		Long: `Prints a JSON object with "token" (the secret: hand it to the sender, it is not stored
anywhere) and "entry" (add it to the "tokens" array of TRAILKEEP_INGEST_TOKENS_FILE; it holds
only the SHA-256 of the secret).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, sum, err := bearer.New()
			if err != nil {
				return err
			}
			entry := t
			entry.SHA256 = sum
			if actorID != "" {
				entry.Actor = map[string]any{"type": actorType, "id": actorID}
				if actorEmail != "" {
					entry.Actor["email"] = actorEmail
				}
			}
			// Validate exactly as ingest will, so a bad entry fails here, not at start-up.
			check, _ := json.Marshal(map[string]any{"tokens": []ingest.Token{entry}})
			if _, err := ingest.ParseTokens(check); err != nil {
				return usageError(err)
			}
			b, _ := json.MarshalIndent(map[string]any{"token": secret, "entry": entry}, "", "  ")
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&t.Name, "name", "", "name for logs and metrics, e.g. sarah-laptop (required)")
	f.StringVar(&t.Tenant, "tenant", "", "tenant slug every event of this token belongs to (required)")
	f.StringVar(&t.Source, "source", "claude_code", "source tool: claude_code, registry, ...")
	f.StringSliceVar(&t.Scopes, "scopes", []string{ingest.ScopeHooks}, "scopes: events:write, hooks:write, cloudevents:write, logs:write (OTLP)")
	f.StringVar(&actorType, "actor-type", "user", "type of the person or service behind the token")
	f.StringVar(&actorID, "actor-id", "", "identity behind the token (a per-user hook token), e.g. sarah@acme.example")
	f.StringVar(&actorEmail, "actor-email", "", "email of the actor")
	create.MarkFlagRequired("name")
	create.MarkFlagRequired("tenant")

	var qt queryapi.Token
	var qActorType, qActorID, qActorEmail, qExpires string
	qcreate := &cobra.Command{
		Use:   "query",
		Short: "Create a query API token (reader, auditor or admin, scoped to tenants)",
		Long: `Prints "token" (the secret, shown once) and "entry" (add it to the "tokens" array of
TRAILKEEP_QUERY_TOKENS_FILE). Readers search and read events, proofs and checkpoints;
auditors also export and run read-only SQL; only an admin may hold --tenant '*'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, sum, err := bearer.New()
			if err != nil {
				return err
			}
			entry := qt
			entry.SHA256 = sum
			if qActorID != "" {
				entry.Actor = &queryapi.Actor{Type: qActorType, ID: qActorID, Email: qActorEmail}
			}
			if qExpires != "" {
				at, err := parseExpiry(qExpires, time.Now())
				if err != nil {
					return usageError(err)
				}
				entry.ExpiresAt = &at
			}
			check, _ := json.Marshal(map[string]any{"tokens": []queryapi.Token{entry}})
			if _, err := queryapi.ParseTokens(check); err != nil {
				return usageError(err)
			}
			b, _ := json.MarshalIndent(map[string]any{"token": secret, "entry": entry}, "", "  ")
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
	qf := qcreate.Flags()
	qf.StringVar(&qt.Name, "name", "", "name for the access log and metrics (required)")
	qf.StringVar((*string)(&qt.Role), "role", "reader", "reader, auditor or admin")
	qf.StringSliceVar(&qt.Tenants, "tenant", nil, "tenants the token may read (repeatable; '*' for every tenant, admin only)")
	qf.StringVar(&qActorType, "actor-type", "user", "type of the person or service behind the token")
	qf.StringVar(&qActorID, "actor-id", "", "identity behind the token, recorded as the actor of its access events")
	qf.StringVar(&qActorEmail, "actor-email", "", "email of the actor")
	qf.StringVar(&qExpires, "expires", "", "end of the token's life: an RFC 3339 time (2027-01-31T00:00:00Z) or a duration from now (720h); default never")
	qcreate.MarkFlagRequired("name")
	cmd.AddCommand(create, qcreate)
	return cmd
}

// parseExpiry reads --expires: an RFC 3339 instant or a Go duration counted from now.
// A token that would be born expired is refused, since it could never be used.
func parseExpiry(v string, now time.Time) (time.Time, error) {
	at, err := time.Parse(time.RFC3339, v)
	if err != nil {
		d, derr := time.ParseDuration(v)
		if derr != nil {
			return time.Time{}, fmt.Errorf("--expires %q: want an RFC 3339 time (2027-01-31T00:00:00Z) or a duration (720h)", v)
		}
		at = now.Add(d)
	}
	if !at.After(now) {
		return time.Time{}, fmt.Errorf("--expires %q: %s is not in the future", v, at.UTC().Format(time.RFC3339))
	}
	return at.UTC().Truncate(time.Second), nil
}

// otelSettings builds the settings.json env block that makes Claude Code export its
// OpenTelemetry logs (tool decisions with who decided, tool results, API requests) to
// ingest's OTLP/HTTP receiver. Settings cannot expand variables, so the token itself
// is written into the block: distribute it as managed settings, per person.
func otelSettings(ingestURL, tokenEnv, token string) (map[string]any, error) {
	u, err := url.Parse(ingestURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("--url must be the ingest base URL, e.g. https://trailkeep.example.com (got %q)", ingestURL)
	}
	if !claudecode.EnvName.MatchString(tokenEnv) {
		return nil, fmt.Errorf("--token-env must be an environment variable name like TRAILKEEP_TOKEN (got %q)", tokenEnv)
	}
	if token == "" {
		return nil, fmt.Errorf("--otel writes the token into the block: set %s to a token with scope %s (trailctl tokens create --scopes %s)", tokenEnv, ingest.ScopeLogs, ingest.ScopeLogs)
	}
	if strings.ContainsAny(token, ",= \t\n") {
		return nil, fmt.Errorf("%s does not look like a trailkeep token", tokenEnv)
	}
	return map[string]any{"env": map[string]any{
		"CLAUDE_CODE_ENABLE_TELEMETRY":     "1",
		"OTEL_LOGS_EXPORTER":               "otlp",
		"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf",
		"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": strings.TrimRight(u.String(), "/") + "/v1/logs",
		"OTEL_EXPORTER_OTLP_LOGS_HEADERS":  "Authorization=Bearer " + token,
		// Tool parameters (what a decision was about) are part of the audit record, as
		// tool_input is for hooks; prompts stay off (OTEL_LOG_USER_PROMPTS).
		"OTEL_LOG_TOOL_DETAILS": "1",
	}}, nil
}
