package edge

import (
	"bytes"
	"crypto/tls"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/route"
)

// The status page: server-rendered HTML (html/template escapes every host,
// label and value, all of which come from service labels), one stylesheet
// and one small script, embedded. The script fetches the page's body again
// every few seconds and swaps it in; it builds no markup of its own.
//
//go:embed status
var statusFiles embed.FS

// statusRefresh is how often the page's script fetches the body again.
const statusRefresh = 3 * time.Second

// statusLimit is how many host and path groups, L4 routes and label errors
// the page lists at most; past that, its filter narrows the lists. (All
// 10,000 routes of a large cluster make 13 MB of HTML that takes seconds
// to render, every refresh.) The summary counts everything.
const statusLimit = 200

var statusTemplates = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago":     ago,
	"clock":   clock,
	"join":    func(s []string) string { return strings.Join(s, ", ") },
	"list":    func(v ...any) []any { return v },
	"latency": latencyText,
	"seconds": func(s float64) string { return roughly(time.Duration(s * float64(time.Second))) },
}).ParseFS(statusFiles, "status/*.html"))

// statusCSP lets the page load its own stylesheet and script and fetch its
// own body, and nothing else: no inline script, no frame, no form.
const statusCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Certificates is what the status page lists of a certificate store
// (*tlsstore.Store): the loaded names, and each one's certificate.
type Certificates interface {
	Names() []string
	Lookup(name string) (*tls.Certificate, bool)
}

// ReportCertificates makes the status page list the certificates of c.
// Call it before Handler.
func (a *Admin) ReportCertificates(c Certificates) { a.certs = c }

// StatusView is everything the status page shows, as /api/status returns it.
type StatusView struct {
	Now          time.Time    `json:"now"`
	Ready        bool         `json:"ready"`
	Draining     bool         `json:"draining"`
	Table        TableView    `json:"table"`
	Sources      []SourceView `json:"sources"`
	Certificates []CertView   `json:"certificates"`
	// ACMEHosts are the hosts published with swarmgate.tls=auto: ACME
	// issues their certificates on the first handshake.
	ACMEHosts []string `json:"acme_hosts,omitempty"`
}

// CertView is one certificate of the certificate directory.
type CertView struct {
	Name      string    `json:"name"`
	DNSNames  []string  `json:"dns_names"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// Routes are the routes that name the certificate (swarmgate.tls=NAME).
	Routes []string `json:"routes,omitempty"`
}

// Status returns what the status page shows now.
func (a *Admin) Status() StatusView {
	now := a.now()
	s := a.edge.Snapshot()
	v := StatusView{Now: now, Ready: a.ready.Load(), Draining: a.draining.Load(),
		Table: s.Describe(now), Sources: a.sourceViews(), Certificates: []CertView{}}
	for h := range s.acme {
		v.ACMEHosts = append(v.ACMEHosts, h)
	}
	slices.Sort(v.ACMEHosts)
	if a.certs == nil {
		return v
	}
	for _, name := range a.certs.Names() {
		c, ok := a.certs.Lookup(name)
		if !ok || c.Leaf == nil {
			continue
		}
		cv := CertView{Name: name, DNSNames: c.Leaf.DNSNames, Issuer: issuerName(c),
			NotBefore: c.Leaf.NotBefore, NotAfter: c.Leaf.NotAfter}
		for _, r := range v.Table.Routes {
			if r.TLS == name {
				cv.Routes = append(cv.Routes, r.Route)
			}
		}
		v.Certificates = append(v.Certificates, cv)
	}
	return v
}

func issuerName(c *tls.Certificate) string {
	is := c.Leaf.Issuer
	switch {
	case is.CommonName != "" && len(is.Organization) > 0:
		return is.CommonName + " (" + is.Organization[0] + ")"
	case is.CommonName != "":
		return is.CommonName
	}
	return is.String()
}

// statusHandlers adds the status page to mux, each handler behind guard.
func (a *Admin) statusHandlers(mux *http.ServeMux, guard func(http.Handler) http.Handler) {
	assets, _ := fs.Sub(statusFiles, "status")
	mux.Handle("GET /status/assets/", guard(http.StripPrefix("/status/assets/", http.FileServerFS(assets))))
	mux.Handle("GET /{$}", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.render(w, "page", r.URL.Query().Get("q"))
	})))
	mux.Handle("GET /status/body", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.render(w, "body", r.URL.Query().Get("q"))
	})))
	mux.Handle("GET /api/status", guard(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, a.Status())
	})))
}

// render writes template name ("page", or "body" for the script's
// refresh) of the status now, its lists narrowed to what matches query. It
// renders to a buffer first, so a template error is a clean 500 and not
// half a page.
func (a *Admin) render(w http.ResponseWriter, name, query string) {
	var buf bytes.Buffer
	if err := statusTemplates.ExecuteTemplate(&buf, name, newStatusPage(a.Status(), query)); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", statusCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// statusPage is a StatusView arranged for the templates.
type statusPage struct {
	StatusView
	Refresh      int    // seconds
	Query        string // the filter; "" lists everything (up to statusLimit)
	Groups       []routeGroup
	L4           []l4Row
	Errors       []LabelErrorView
	Sources      []sourceRow
	Certificates []certRow
	Up, Total    int // HTTP and L4 endpoints available, and all of them
	// How many of each list are shown, match the filter, and exist.
	GroupCount, L4Count, ErrorCount listCount
}

// listCount is how much of a list the page shows.
type listCount struct{ Shown, Matched, Total int }

// Partial reports whether some of the list is left out.
func (c listCount) Partial() bool { return c.Shown < c.Total }

// keep returns the first statusLimit items of list that match, and counts.
func keep[T any](list []T, match func(T) bool) ([]T, listCount) {
	c := listCount{Total: len(list)}
	var out []T
	for _, x := range list {
		if !match(x) {
			continue
		}
		c.Matched++
		if len(out) < statusLimit {
			out = append(out, x)
		}
	}
	c.Shown = len(out)
	return out, c
}

// matcher reports whether any of a row's fields contains query, ignoring
// case; an empty query matches everything.
func matcher(query string) func(fields ...string) bool {
	q := strings.ToLower(strings.TrimSpace(query))
	return func(fields ...string) bool {
		if q == "" {
			return true
		}
		for _, f := range fields {
			if strings.Contains(strings.ToLower(f), q) {
				return true
			}
		}
		return false
	}
}

// fields are the texts of a route the filter looks at.
func routeFields(route, service string, hosts []string, eps []proxy.EndpointView) []string {
	f := append([]string{route, service}, hosts...)
	for _, e := range eps {
		f = append(f, e.Addr)
	}
	return f
}

// routeGroup is the routes that share hosts and path (exact or prefix, and
// priority): a weighted group, a canary pair, or one route alone.
type routeGroup struct {
	Hosts   []string
	Path    string // as shown: "= /health" for an exact path, as check shows it
	Default bool
	Routes  []routeRow
}

// shownPath is a route's path as the page shows it: "= /x" for an exact
// path (as NGINX writes location = /x), the prefix as it is.
func shownPath(r proxy.RouteView) string {
	if r.Exact {
		return "= " + r.Path
	}
	return r.Path
}

type routeRow struct {
	proxy.RouteView
	Share       int // percent of the group's traffic by weight; -1 alone
	TLSMode     string
	CertMissing bool // names a certificate the directory does not have
	Up          int
	Endpoints   []endpointRow
}

type endpointRow struct {
	proxy.EndpointView
	State  string // up, ejected, down
	Detail string // until when, and why
	Errors string // recent failures, "" for none
}

type l4Row struct {
	L4View
	Up        int
	Endpoints []endpointRow
}

type sourceRow struct {
	SourceView
	Reachable string // yes, no, or "not reported"
	Detail    []keyValue
}

type keyValue struct{ Key, Value string }

type certRow struct {
	CertView
	Left string // time to expiry
	Warn string // "", "soon" (under 14 days) or "expired"
}

// certWarning is how close to expiry a certificate is flagged, as the
// alert rules do.
const certWarning = 14 * 24 * time.Hour

func newStatusPage(v StatusView, query string) statusPage {
	p := statusPage{StatusView: v, Refresh: int(statusRefresh / time.Second), Query: query}
	match := matcher(query)
	certs := make(map[string]bool)
	for _, c := range v.Certificates {
		certs[c.Name] = true
	}
	p.Groups = groupRoutes(v.Table.Routes, func(r proxy.RouteView) routeRow {
		row := routeRow{RouteView: r, Share: -1, TLSMode: tlsMode(r)}
		switch r.TLS {
		case "", route.TLSOff, route.TLSAuto, route.TLSPassthrough:
		default:
			row.CertMissing = !certs[r.TLS]
		}
		row.Endpoints, row.Up = endpointRows(r.Endpoints, v.Now)
		p.Up, p.Total = p.Up+row.Up, p.Total+len(r.Endpoints)
		return row
	})
	p.Groups, p.GroupCount = keep(p.Groups, func(g routeGroup) bool {
		for _, r := range g.Routes {
			if match(routeFields(r.Route, r.Service, r.Hosts, r.RouteView.Endpoints)...) || match(shownPath(r.RouteView)) {
				return true
			}
		}
		return false
	})
	var l4 []l4Row
	for _, e := range v.Table.L4 {
		row := l4Row{L4View: e}
		row.Endpoints, row.Up = endpointRows(e.Endpoints, v.Now)
		p.Up, p.Total = p.Up+row.Up, p.Total+len(e.Endpoints)
		l4 = append(l4, row)
	}
	p.L4, p.L4Count = keep(l4, func(r l4Row) bool {
		return match(routeFields(r.Route, r.Service, r.SNI, r.L4View.Endpoints)...) || match(":"+strconv.Itoa(r.Port))
	})
	p.Errors, p.ErrorCount = keep(v.Table.Errors, func(e LabelErrorView) bool {
		return match(e.Service, e.Label, e.Value, e.Reason)
	})
	for _, s := range v.Sources {
		row := sourceRow{SourceView: s, Reachable: "not reported"}
		if s.Status != nil {
			row.Reachable = "no"
			if s.Status.Connected {
				row.Reachable = "yes"
			}
			row.Detail = flatten(s.Status.Detail, v.Now)
		}
		p.Sources = append(p.Sources, row)
	}
	for _, c := range v.Certificates {
		row := certRow{CertView: c, Left: until(v.Now, c.NotAfter)}
		switch left := c.NotAfter.Sub(v.Now); {
		case left <= 0:
			row.Warn, row.Left = "expired", "expired "+ago(v.Now, c.NotAfter)
		case left < certWarning:
			row.Warn = "soon"
		}
		p.Certificates = append(p.Certificates, row)
	}
	return p
}

// groupRoutes groups routes by hosts, path and priority, in the order of
// their first route, and gives each member of a group of several its share
// of the weight.
func groupRoutes(routes []proxy.RouteView, row func(proxy.RouteView) routeRow) []routeGroup {
	var groups []routeGroup
	index := make(map[string]int)
	shares := WeightShares(routes)
	for i, r := range routes {
		key := groupKey(r)
		g, ok := index[key]
		if !ok {
			g = len(groups)
			index[key] = g
			groups = append(groups, routeGroup{Hosts: r.Hosts, Path: shownPath(r), Default: r.Default})
		}
		rr := row(r)
		rr.Share = shares[i]
		groups[g].Routes = append(groups[g].Routes, rr)
	}
	return groups
}

// WeightShares returns, for each route, its share in percent of the
// traffic of the weighted group it belongs to (the routes that publish the
// same hosts, path and priority: a canary or blue-green pair; an exact and
// a prefix route of one path are two groups), or -1 for a route alone.
func WeightShares(routes []proxy.RouteView) []int {
	sums := make(map[string]int)
	members := make(map[string]int)
	for _, r := range routes {
		k := groupKey(r)
		sums[k] += r.Weight
		members[k]++
	}
	out := make([]int, len(routes))
	for i, r := range routes {
		k := groupKey(r)
		switch {
		case members[k] < 2:
			out[i] = -1
		case sums[k] == 0:
			out[i] = 0
		default:
			out[i] = (100*r.Weight + sums[k]/2) / sums[k]
		}
	}
	return out
}

func groupKey(r proxy.RouteView) string {
	hosts := slices.Clone(r.Hosts)
	slices.Sort(hosts)
	return strings.Join(hosts, ",") + " " + shownPath(r) + " " + strconv.Itoa(r.Priority) + " " + strconv.FormatBool(r.Default)
}

// tlsMode says how a route's hosts are served over TLS.
func tlsMode(r proxy.RouteView) string {
	var s string
	switch r.TLS {
	case "", route.TLSOff:
		return "off"
	case route.TLSAuto:
		s = "ACME"
	case route.TLSPassthrough:
		return "passthrough"
	default:
		s = "certificate " + r.TLS
	}
	if r.TLSRedirect {
		s += ", HTTP redirected"
	}
	return s
}

// EndpointState names an endpoint's health: "up", "ejected" (passive
// health, until EjectedUntil), "probing" (back from an ejection, one
// request at a time until one succeeds) or "down" (its active health check
// failed).
func EndpointState(e proxy.EndpointView) string {
	switch {
	case e.Down:
		return "down"
	case !e.EjectedUntil.IsZero():
		return "ejected"
	case e.Probing:
		return "probing"
	case !e.Available:
		return "down"
	}
	return "up"
}

// RecentErrors says what passive health holds against an endpoint: its
// failures and ejections in a row, "" when there are none.
func RecentErrors(e proxy.EndpointView) string {
	var parts []string
	if e.Failures > 0 {
		parts = append(parts, plural(e.Failures, "failure")+" in a row")
	}
	if e.Ejections > 0 {
		parts = append(parts, plural(e.Ejections, "ejection")+" in a row")
	}
	return strings.Join(parts, ", ")
}

func endpointRows(eps []proxy.EndpointView, now time.Time) (rows []endpointRow, up int) {
	for _, e := range eps {
		r := endpointRow{EndpointView: e, State: EndpointState(e), Errors: RecentErrors(e)}
		switch r.State {
		case "up":
			up++
		case "ejected":
			r.Detail = "until " + clock(now, e.EjectedUntil) + " (" + until(now, e.EjectedUntil) + ")"
		case "probing":
			r.Detail = "back from an ejection: one request at a time until one succeeds"
		case "down":
			r.Detail = "active health check failing"
		}
		if e.Down && !e.EjectedUntil.IsZero() {
			r.Detail += "; ejected until " + clock(now, e.EjectedUntil)
		}
		rows = append(rows, r)
	}
	return rows, up
}

// flatten lists the top-level fields of a source's JSON detail, in the
// order the source's type declares them; times are said as the page says
// them.
func flatten(detail any, now time.Time) []keyValue {
	if detail == nil {
		return nil
	}
	raw, err := json.Marshal(detail)
	if err != nil {
		return []keyValue{{"detail", err.Error()}}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return []keyValue{{"detail", string(raw)}}
	}
	var out []keyValue
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			break
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			break
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = string(v)
		} else if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			s = clock(now, t) + " (" + ago(now, t) + ")"
		}
		out = append(out, keyValue{fmt.Sprint(k), s})
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// clock formats a moment for the page: UTC, to the second, with the date
// when it is not the day of now.
func clock(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	t, now = t.UTC(), now.UTC()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05 UTC")
	}
	return t.Format("2006-01-02 15:04:05 UTC")
}

// ago says how long before now t was: "4s ago", or "just now" within a
// second.
func ago(now, t time.Time) string {
	switch d := now.Sub(t); {
	case t.IsZero():
		return "never"
	case d < time.Second:
		return "just now"
	}
	return roughly(now.Sub(t)) + " ago"
}

// until says how long after now t is: "in 4s".
func until(now, t time.Time) string {
	if !t.After(now) {
		return "now"
	}
	return "in " + roughly(t.Sub(now))
}

// roughly rounds a duration to what a person reads at a glance.
func roughly(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days"
}

func latencyText(ms float64) string {
	if ms == 0 {
		return "—"
	}
	return strconv.FormatFloat(ms, 'f', -1, 64) + " ms"
}
