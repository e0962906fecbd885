package proxy

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// legacyOutHeader is how the upstream header was built before outHeader:
// a clone, then each removal in turn.
func legacyOutHeader(h http.Header) http.Header {
	out := h.Clone()
	if out == nil {
		out = make(http.Header)
	}
	removeHopByHop(out)
	delete(out, "Http2-Settings")
	for k := range out {
		if strings.IndexByte(k, '_') >= 0 {
			delete(out, k)
		}
	}
	return out
}

// TestOutHeaderAsBefore: outHeader keeps and drops the fields that cloning
// and removing them one by one did.
func TestOutHeaderAsBefore(t *testing.T) {
	for _, h := range []http.Header{
		nil,
		{},
		{"Accept": {"*/*"}, "User-Agent": nil, "X-Many": {"a", "b", "c"}},
		{"Connection": {"keep-alive, X-Secret", " x-other ,,"}, "X-Secret": {"1"}, "X-Other": {"2"}, "Keep-Alive": {"5"}},
		{"Connection": {"X-Forwarded-For, X-Real-Ip"}, "X-Forwarded-For": {"1.2.3.4"}, "X-Real-Ip": {"1.2.3.4"}},
		{"Te": {"gzip, trailers"}, "Trailer": {"X"}, "Transfer-Encoding": {"chunked"}, "Upgrade": {"websocket"}},
		{"Te": {"trailers"}, "Connection": {"TE"}},
		{"Proxy-Connection": {"keep-alive"}, "Proxy-Authorization": {"Basic x"}, "Proxy-Authenticate": {"y"}},
		{"Http2-Settings": {"AAA"}, "X_Forwarded_For": {"evil"}, "Under_score": {"x"}, "Ok-Field": {"v"}},
		{"Connection": {"upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {"k"}},
	} {
		got, want := outHeader(h, forwardedFields), legacyOutHeader(h)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("outHeader(%v) = %v, want %v", h, got, want)
		}
	}
}

// FuzzOutHeader: outHeader agrees with cloning and removing for fields
// and Connection values built from fuzzed parts.
func FuzzOutHeader(f *testing.F) {
	f.Add("X-A", "1", "keep-alive, x-a", "trailers", "B_c")
	f.Add("Te", "trailers", "te", "gzip", "Upgrade")
	f.Add("X-Forwarded-For", "1", "X-Forwarded-For", "", "Keep-Alive")
	f.Fuzz(func(t *testing.T, k1, v1, conn, te, k2 string) {
		h := http.Header{"Connection": {conn}, "Te": {te}}
		h.Add(k1, v1)
		h[k2] = []string{v1, te}
		if got, want := outHeader(h, 0), legacyOutHeader(h); !reflect.DeepEqual(got, want) {
			t.Fatalf("outHeader(%v) = %v, want %v", h, got, want)
		}
	})
}
