package claudecode

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// EnvName is what an environment variable holding a token may be called.
var EnvName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// Settings builds the settings.json fragment that sends every hook event to
// ingestURL with the bearer token taken from the environment variable tokenEnv.
func Settings(ingestURL, tokenEnv string, timeout int) (map[string]any, error) {
	u, err := url.Parse(ingestURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("--url must be the ingest base URL, e.g. https://trailkeep.example.com (got %q)", ingestURL)
	}
	if !EnvName.MatchString(tokenEnv) {
		return nil, fmt.Errorf("--token-env must be an environment variable name like TRAILKEEP_TOKEN (got %q)", tokenEnv)
	}
	endpoint := strings.TrimRight(u.String(), "/") + "/v1/hooks/claude-code"
	httpHook := map[string]any{
		"type": "http",
		"url":  endpoint,
		// $VAR in a header is expanded only when listed in allowedEnvVars; otherwise
		// Claude Code sends an empty string and every event is rejected with 401.
		"headers":        map[string]any{"Authorization": "Bearer $" + tokenEnv},
		"allowedEnvVars": []string{tokenEnv},
		"timeout":        timeout,
	}
	// The curl fallback: -f so an error is visible in Claude Code's hook log, a short
	// max-time so a down endpoint never delays the session, and stdout discarded so
	// nothing is injected into the model's context.
	curl := fmt.Sprintf(`curl -sS -f --max-time %d -X POST -H "Authorization: Bearer $%s" -H "Content-Type: application/json" --data-binary @- %s >/dev/null`, timeout, tokenEnv, endpoint)
	// One entry per event of the mapper's table, except those where an audit hook
	// would change what Claude Code does (Events, Unsafe).
	hooks := map[string]any{}
	for _, ev := range Events {
		var entry map[string]any
		switch {
		case ev.Unsafe != "":
			continue
		case ev.Command:
			entry = map[string]any{"hooks": []any{map[string]any{"type": "command", "command": curl, "timeout": timeout}}}
		default:
			entry = map[string]any{"hooks": []any{httpHook}}
			if ev.Matcher {
				entry["matcher"] = "*"
			}
		}
		hooks[ev.Name] = []any{entry}
	}
	return map[string]any{"hooks": hooks}, nil
}
