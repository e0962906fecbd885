package proxy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxErrorPage bounds a swarmgate.errors.page file: it is held in memory
// by every table that uses it.
const maxErrorPage = 256 << 10

// errorPage reads the swarmgate.errors.page of tg's route from the secrets
// directory, else the configs directory: once per table build, so that a
// new version of the file is served after the next change of any route. A
// page that cannot be read leaves the route with the plain-text answers.
func (p *Proxy) errorPage(tg *target) error {
	name := ""
	if tg.route.Policy != nil {
		name = tg.route.Policy.ErrorPage
	}
	if name == "" {
		return nil
	}
	page, err := readPage(filepath.Join(p.secrets, name))
	if errors.Is(err, fs.ErrNotExist) {
		page, err = readPage(filepath.Join(p.configs, name))
	}
	if err != nil {
		return fmt.Errorf("errors.page %s (served as plain text): %w", name, err)
	}
	tg.errorPage = page
	return nil
}

// readPage reads a file of at most maxErrorPage bytes.
func readPage(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxErrorPage+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxErrorPage {
		return nil, fmt.Errorf("larger than %d bytes", maxErrorPage)
	}
	return b, nil
}

// servePage answers with the route's error page, if it has one and the
// answer is one the page is for (the proxy's own 502, 503 and 504) and the
// client accepts HTML. It reports whether it answered.
func servePage(w http.ResponseWriter, x *exchange, code int) bool {
	if x.target == nil || x.target.errorPage == nil {
		return false
	}
	switch code {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
	default:
		return false
	}
	h := w.Header()
	h.Add("Vary", "Accept") // the plain-text answer too: it depends on Accept
	if !acceptsHTML(x.accept) {
		return false
	}
	page := x.target.errorPage
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	n, _ := w.Write(page)
	x.bytes = int64(n)
	return true
}

// acceptsHTML reports whether an Accept field lists text/html with a
// quality above 0 (RFC 9110 section 12.5.1). */* is not enough: it is what
// scripts and API clients send, and they read plain text better.
func acceptsHTML(accept []string) bool {
	for _, line := range accept {
		for part := range strings.SplitSeq(line, ",") {
			media, params, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(media), "text/html") {
				return !zeroQuality(params)
			}
		}
	}
	return false
}

// zeroQuality reports whether media-range parameters say q=0.
func zeroQuality(params string) bool {
	for param := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(param), "=")
		if strings.EqualFold(k, "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q == 0
		}
	}
	return false
}
