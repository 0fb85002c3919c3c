package event

// SchemaVersion is the version of the canonical event this package produces.
const SchemaVersion = 1

// Event is the canonical audit event, version 1. Its JSON form is defined by
// schemas/event/v1.schema.json; a test keeps the two in step. Optional
// sub-objects are pointers so that an absent object stays absent in the
// canonical bytes instead of becoming an empty one.
type Event struct {
	ID             string `json:"id"`
	SchemaVersion  int    `json:"schema_version"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// IdempotencyConflict is the id of an earlier event with the same idempotency
	// key and different content; set by ingest only.
	IdempotencyConflict string         `json:"idempotency_conflict,omitempty"`
	OccurredAt          Time           `json:"occurred_at"`
	ReceivedAt          Time           `json:"received_at"`
	Tenant              string         `json:"tenant"`
	Source              Source         `json:"source"`
	Actor               Actor          `json:"actor"`
	Action              string         `json:"action"`
	Resource            Resource       `json:"resource"`
	Result              *Result        `json:"result,omitempty"`
	Session             *Session       `json:"session,omitempty"`
	Approval            *Approval      `json:"approval,omitempty"`
	Policy              *Policy        `json:"policy,omitempty"`
	Change              *Change        `json:"change,omitempty"`
	ComplianceTags      []string       `json:"compliance_tags,omitempty"`
	Redactions          []Redaction    `json:"redactions,omitempty"`
	Metadata            map[string]any `json:"metadata,omitempty"`
}

// Source says which tool produced the event and how it reached trailkeep.
type Source struct {
	Tool        string `json:"tool"`
	ToolVersion string `json:"tool_version,omitempty"`
	Channel     string `json:"channel,omitempty"`
	RawEvent    string `json:"raw_event,omitempty"`
}

// Actor types accepted by the schema.
const (
	ActorUser     = "user"
	ActorService  = "service"
	ActorAgent    = "agent"
	ActorSubagent = "subagent"
	ActorSystem   = "system"
)

// Actor is who performed the action. Client IP addresses are never stored:
// ingest replaces them with IPHMAC.
type Actor struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Email     string `json:"email,omitempty"`
	Name      string `json:"name,omitempty"`
	IPHMAC    string `json:"ip_hmac,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// Resource is what the action was performed on.
type Resource struct {
	Type    string   `json:"type"`
	ID      string   `json:"id"`
	Name    string   `json:"name,omitempty"`
	Targets []Target `json:"targets,omitempty"`
}

// Target is a further object affected by the action (WorkOS-style targets).
type Target struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Result statuses accepted by the schema.
const (
	StatusSuccess = "success"
	StatusFailure = "failure"
	StatusDenied  = "denied"
	StatusPending = "pending"
)

// Result is the outcome of the action.
type Result struct {
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	DurationMS *int64 `json:"duration_ms,omitempty"`
}

// Session ties an event to an agent session, prompt and tool call.
type Session struct {
	ID        string `json:"id,omitempty"`
	PromptID  string `json:"prompt_id,omitempty"`
	ToolUseID string `json:"tool_use_id,omitempty"`
	AgentID   string `json:"agent_id,omitempty"`
}

// Approval records who approved an action and binds the approved parameters
// to the executed ones by digest ("sha256:<hex>" of their canonical JSON).
type Approval struct {
	Decision             string `json:"decision,omitempty"`
	DecidedBy            string `json:"decided_by,omitempty"`
	ApprovedParamsDigest string `json:"approved_params_digest,omitempty"`
	ExecutedParamsDigest string `json:"executed_params_digest,omitempty"`
	ParamsMatch          *bool  `json:"params_match,omitempty"`
}

// Policy is the rule or policy, and its version, in force for the action.
type Policy struct {
	ID      string `json:"id"`
	Version string `json:"version,omitempty"`
}

// Change describes a change to a rule, skill or setting.
type Change struct {
	FromVersion   string   `json:"from_version,omitempty"`
	ToVersion     string   `json:"to_version,omitempty"`
	DiffSummary   string   `json:"diff_summary,omitempty"`
	ChangedFields []string `json:"changed_fields,omitempty"`
}

// Redaction records that ingest removed a secret from Field (a JSON pointer)
// because detector Rule matched.
type Redaction struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
}
