// Package console is trailkeep's web console: a few static pages and ES modules,
// embedded in the binary, that the query API serves under /ui/. The console holds
// no data and no secrets of its own: the browser signs in with a query token (kept
// in the tab's sessionStorage only, sent as a bearer token, never as a cookie, so
// there is nothing for another site to ride on), and every view reads through the
// query API, where each call is authorized, tenant-scoped and audited like any
// other read (the console names its view in the X-Trailkeep-Console header, which
// the access event records).
//
// Proofs are checked in the browser (assets/verify.js: RFC 6962 audit paths,
// C2SP signed notes, SHA-256 and Ed25519 through WebCrypto) against a public key
// the reader supplies or pins, not one the server hands out.
//
// The pages load nothing from elsewhere, and the Content-Security-Policy says so:
// scripts, styles and connections only from the console's own origin, no inline
// script or style, no framing, no plugins.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed assets
var assets embed.FS

// Prefix is where the console is served.
const Prefix = "/ui/"

// ViewHeader is the request header in which the console names the view a call is
// made for; the query API records it in the call's access event.
const ViewHeader = "X-Trailkeep-Console"

// CSP is the Content-Security-Policy of every console response.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'none'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// Assets returns the embedded files (index.html, the modules, the style sheet).
func Assets() fs.FS {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	return sub
}

// Handler serves the console under Prefix. Paths that name no asset are answered
// with index.html, so a view's address (/ui/#/event/…) can be reloaded and shared.
func Handler() http.Handler {
	files := http.FileServerFS(Assets())
	return http.StripPrefix(strings.TrimSuffix(Prefix, "/"), secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the console is read-only: GET or HEAD", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		if name == "" || name == "index.html" {
			serveIndex(w, r)
			return
		}
		if _, err := fs.Stat(Assets(), name); err != nil {
			serveIndex(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})))
}

func serveIndex(w http.ResponseWriter, r *http.Request) {
	b, err := fs.ReadFile(Assets(), "index.html")
	if err != nil {
		http.Error(w, "console index missing from the build", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

// secure sets the headers every console response carries.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
		// Assets change with the binary; a stale module beside a new API would be
		// a silent mismatch, so the browser revalidates every load.
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
