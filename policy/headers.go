package policy

import (
	"net/http"

	"github.com/swarmgate/swarmgate/route"
)

// requestHeaders sets (or removes, for an empty value) fields of the
// request before it goes on.
func requestHeaders(set []route.Header, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apply(r.Header, set)
		next.ServeHTTP(w, r)
	})
}

// responseHeaders sets (or removes) fields of the response just before it
// is sent, over what the upstream said.
func responseHeaders(set []route.Header, next http.Handler) http.Handler {
	edit := func(h http.Header) { apply(h, set) }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&editWriter{ResponseWriter: w, edit: edit}, r)
	})
}

// apply edits h; names are canonical already (ParseHeader).
func apply(h http.Header, set []route.Header) {
	for _, f := range set {
		if f.Value == "" {
			delete(h, f.Name)
		} else {
			h[f.Name] = []string{f.Value}
		}
	}
}
