package claudecode

// HookEvent is one Claude Code hook event as trailkeep maps and registers it.
type HookEvent struct {
	// Name is hook_event_name.
	Name string
	// Action and Resource are the canonical action and resource type; an empty
	// Resource means the tool named by tool_name.
	Action, Resource string
	// Command: the event accepts only command hooks (SessionStart, Setup), so
	// print-config registers the curl fallback instead of an http hook.
	Command bool
	// Matcher: a tool event, registered with matcher "*".
	Matcher bool
	// Unsafe, when not empty, says why an observe-only audit hook on this event
	// would change what Claude Code does; print-config never registers it. The
	// wording follows the hooks reference.
	Unsafe string
}

// Events is every hook event of the hooks reference (https://code.claude.com/docs/en/hooks,
// fields up to v2.1.274, checked 2026-12-01 and recorded in ../shared/design/SOURCES.md),
// in the reference's order. It drives both the mapping and `trailctl hooks print-config`.
//
// An audit hook answers with an empty 2xx. That is a no-op for every event except
// those marked Unsafe:
//   - WorktreeCreate: a configured hook replaces git worktree creation and must return
//     hookSpecificOutput.worktreePath; an empty answer makes creation fail (--worktree,
//     isolation: "worktree" subagents, background sessions).
//   - WorktreeRemove: its counterpart for the same custom-VCS setups; not confirmed
//     observe-only against the reference here, so not registered.
//   - PreModelSwitch: a hook that times out blocks the switch, so an unreachable ingest
//     would block it; PostModelSwitch records the switch instead.
var Events = []HookEvent{
	{Name: "SessionStart", Action: "session.started", Resource: "session", Command: true},
	{Name: "Setup", Action: "session.setup", Resource: "session", Command: true},
	{Name: "UserPromptSubmit", Action: "prompt.submitted", Resource: "prompt"},
	{Name: "UserPromptExpansion", Action: "command.expanded", Resource: "command"},
	{Name: "PreToolUse", Action: "tool.requested", Matcher: true},
	{Name: "PermissionRequest", Action: "tool.permission_requested", Matcher: true},
	{Name: "PermissionDenied", Action: "tool.permission_denied", Matcher: true},
	{Name: "PostToolUse", Action: "tool.executed", Matcher: true},
	{Name: "PostToolUseFailure", Action: "tool.failed", Matcher: true},
	{Name: "PostToolBatch", Action: "tool.batch_completed", Resource: "session"},
	{Name: "Notification", Action: "notification.sent", Resource: "notification"},
	{Name: "MessageDisplay", Action: "message.displayed", Resource: "session"},
	{Name: "SubagentStart", Action: "subagent.started", Resource: "subagent"},
	{Name: "SubagentStop", Action: "subagent.stopped", Resource: "subagent"},
	{Name: "TeammateIdle", Action: "teammate.idle", Resource: "session"},
	{Name: "TaskCreated", Action: "task.created", Resource: "task"},
	{Name: "TaskCompleted", Action: "task.completed", Resource: "task"},
	{Name: "Stop", Action: "turn.stopped", Resource: "session"},
	{Name: "StopFailure", Action: "turn.failed", Resource: "session"},
	{Name: "ConfigChange", Action: "config.changed", Resource: "config"},
	{Name: "InstructionsLoaded", Action: "instructions.loaded", Resource: "instructions"},
	{Name: "CwdChanged", Action: "session.cwd_changed", Resource: "session"},
	{Name: "DirectoryAdded", Action: "session.directory_added", Resource: "directory"},
	{Name: "FileChanged", Action: "file.changed", Resource: "file"},
	{Name: "WorktreeCreate", Action: "worktree.created", Resource: "worktree",
		Unsafe: "a WorktreeCreate hook replaces git worktree creation and must return hookSpecificOutput.worktreePath; an empty answer makes worktree creation fail"},
	{Name: "WorktreeRemove", Action: "worktree.removed", Resource: "worktree",
		Unsafe: "the counterpart of WorktreeCreate for custom version control; not confirmed to be a no-op with an empty answer"},
	{Name: "PreModelSwitch", Action: "model.switch_requested", Resource: "model",
		Unsafe: "a PreModelSwitch hook that times out blocks the model switch, so an unreachable ingest would block it"},
	{Name: "PostModelSwitch", Action: "model.switched", Resource: "model"},
	{Name: "PreCompact", Action: "context.compacting", Resource: "session"},
	{Name: "PostCompact", Action: "context.compacted", Resource: "session"},
	{Name: "Elicitation", Action: "elicitation.requested", Resource: "elicitation"},
	{Name: "ElicitationResult", Action: "elicitation.answered", Resource: "elicitation"},
	{Name: "SessionEnd", Action: "session.ended", Resource: "session"},
}
