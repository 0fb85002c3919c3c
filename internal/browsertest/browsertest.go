// Package browsertest starts a real headless Chromium (Debian's package, installed by
// scripts/chromium.sh when missing) for tests of the web console, behind the shared
// integration gate: under -short the tests that need it skip, naming it; otherwise a
// browser that cannot start fails the test with the reason.
package browsertest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/trailkeep/trailkeep/internal/integration"
	"github.com/trailkeep/trailkeep/internal/repo"
)

// Flags are the command-line flags every test browser runs with: headless, and no
// background traffic (this machine's network is closed, and a test must only talk
// to the servers it started).
var Flags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
	"--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"}

// New starts a fresh browser (own profile directory) and returns a tab's context;
// the browser is stopped when the test ends. Every action under the context is
// bounded by timeout.
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	integration.Require(t, "Chromium (headless)")
	bin := binary(t)
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(bin), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900)}
	for _, f := range Flags {
		opts = append(opts, chromedp.Flag(strings.TrimPrefix(f, "--"), true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	// Start the browser now, so that a failure to start is reported as such and not
	// as the first action's timeout.
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("browsertest: start %s: %v", bin, err)
	}
	// An uncaught exception in the page (a view's async handler that throws leaves
	// the view half drawn) fails the test, whatever the test was waiting for.
	var mu sync.Mutex
	var thrown []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok && e.ExceptionDetails != nil {
			msg := e.ExceptionDetails.Text
			if ex := e.ExceptionDetails.Exception; ex != nil && ex.Description != "" {
				msg += " " + ex.Description
			}
			mu.Lock()
			thrown = append(thrown, msg)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("browsertest: listen: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc() // kills the browser process and waits for it
		mu.Lock()
		defer mu.Unlock()
		for _, m := range thrown {
			t.Errorf("browsertest: the page threw an uncaught exception: %s", m)
		}
	})
	return tctx
}

// binary returns Chromium's path, installing the package when it is missing.
func binary(t testing.TB) string {
	t.Helper()
	script, err := repo.Script("chromium.sh")
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	out, err := exec.Command(script).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		t.Fatalf("browsertest: %s: %s", script, msg)
	}
	return strings.TrimSpace(string(out))
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise) and
// decodes its value. DevTools evaluation is not subject to the page's
// Content-Security-Policy, so tests can probe a page whose CSP forbids eval.
func Eval[T any](ctx context.Context, expr string) (T, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// WaitFor polls a JavaScript condition until it is true or ctx ends; on timeout
// the error says what was awaited and what describe (another expression) shows.
func WaitFor(ctx context.Context, cond, describe string) error {
	for {
		ok, err := Eval[bool](ctx, "!!("+cond+")")
		if err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			state, _ := Eval[string](context.WithoutCancel(ctx), "String("+describe+")")
			return fmt.Errorf("waiting for %s: %w (page shows: %s)", cond, ctx.Err(), state)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
