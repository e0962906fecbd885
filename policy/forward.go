package policy

import (
	"context"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Bounds of forward auth.
const (
	// DefaultAuthTimeout bounds one exchange with the auth service, its
	// answer's body included.
	DefaultAuthTimeout = 5 * time.Second
	// maxAuthBody bounds the body of an auth service's refusal (a login
	// page) that is passed to the client; a longer one is a failure.
	maxAuthBody = 64 << 10
)

// authHop are the fields that describe one connection or one body (RFC
// 9110 section 7.6.1, and the framing of a body the auth request does not
// have): never copied between the client, the auth service and the request.
var authHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Proxy-Authenticate", "Proxy-Authorization", "Content-Length", "Expect", "Http2-Settings",
}

// authClaims are the request fields a client could use to pose as someone
// the auth service told about: the edge sets them itself.
var authClaims = []string{
	"X-Forwarded-Method", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri", "X-Forwarded-For",
	"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Real-Ip", "Forwarded",
}

// forwardAuth asks an auth service about every request, as NGINX's
// auth_request and Traefik's ForwardAuth do: the request's method, its
// fields and X-Forwarded-Method, -Proto, -Host, -Uri and -For, without its
// body. A 2xx answer lets the request through with the fields named in
// copy taken from the answer (removed when the answer has none, so that a
// client cannot set them itself); any other answer is sent to the client as
// it is (a redirect to a login page, a 401 with its challenge). An auth
// service that fails, times out or answers with a body over maxAuthBody
// gets the request 503: it never lets a request through.
func forwardAuth(target string, copy []string, rt http.RoundTripper, timeout time.Duration,
	next http.Handler, reply replyFunc, relay relayFunc) http.Handler {
	u, _ := url.Parse(target) // ParseAuthURL checked it
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		resp, err := rt.RoundTrip(authRequest(ctx, u, r))
		if err != nil {
			reply(w, r, http.StatusServiceUnavailable, "auth service: "+err.Error())
			return
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxAuthBody+1))
		resp.Body.Close()
		switch {
		case err != nil:
			reply(w, r, http.StatusServiceUnavailable, "auth service: reading the answer: "+err.Error())
			return
		case len(body) > maxAuthBody:
			reply(w, r, http.StatusServiceUnavailable, "auth service: answer body over "+strconv.Itoa(maxAuthBody)+" bytes")
			return
		case resp.StatusCode < 200 || resp.StatusCode > 299:
			h := w.Header()
			for k, vv := range resp.Header {
				h[k] = vv
			}
			dropHop(h)
			relay(w, r, resp.StatusCode, body, "auth service answered "+strconv.Itoa(resp.StatusCode))
			return
		}
		for _, name := range copy {
			if vv := resp.Header[name]; len(vv) > 0 {
				r.Header[name] = vv
			} else {
				delete(r.Header, name)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// authRequest is the question about r to the auth service at u.
func authRequest(ctx context.Context, u *url.URL, r *http.Request) *http.Request {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	dropHop(h)
	for _, k := range authClaims {
		delete(h, k)
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	h["X-Forwarded-Method"] = []string{r.Method}
	h["X-Forwarded-Proto"] = []string{proto}
	h["X-Forwarded-Host"] = []string{r.Host}
	h["X-Forwarded-Uri"] = []string{r.URL.RequestURI()}
	if a, ok := clientAddr(r); ok {
		h["X-Forwarded-For"] = []string{a.String()}
	}
	out := &http.Request{
		Method: r.Method, URL: u, Host: u.Host, Header: h,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	return out.WithContext(ctx)
}

// dropHop removes the authHop fields of h and those its Connection field
// names.
func dropHop(h http.Header) {
	for _, f := range h["Connection"] {
		for name := range strings.SplitSeq(f, ",") {
			if name = textproto.TrimString(name); name != "" && httpguts.ValidHeaderFieldName(name) {
				h.Del(name)
			}
		}
	}
	for _, k := range authHop {
		delete(h, k)
	}
}

// relayFunc is Options.Relay.
type relayFunc = func(w http.ResponseWriter, r *http.Request, code int, body []byte, reason string)

// plainRelay is the Relay of Options without one.
func plainRelay(w http.ResponseWriter, _ *http.Request, code int, body []byte, _ string) {
	w.WriteHeader(code)
	w.Write(body)
}
