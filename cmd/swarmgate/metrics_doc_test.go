package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The files these tests hold to what the roles export.
var (
	metricsDoc      = filepath.Join("..", "..", "docs", "metrics.md")
	grafanaDir      = filepath.Join("..", "..", "deploy", "grafana")
	productionStack = filepath.Join("..", "..", "deploy", "swarmgate-stack.yml")
)

// docRow is one row of docs/metrics.md's reference table.
type docRow struct {
	line   int
	info   metricInfo
	roles  []string
	rawRow string
}

var backticked = regexp.MustCompile("`([^`]+)`")

// readMetricsDoc returns the rows of the reference table, by metric name.
func readMetricsDoc(t *testing.T) map[string]docRow {
	t.Helper()
	b, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]docRow{}
	in := false
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| metric | type | labels | exported by |") {
			in = true
			continue
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 5 {
			t.Fatalf("%s:%d: %d cells, want 5: %s", metricsDoc, i+1, len(cells), line)
		}
		name := backticked.FindStringSubmatch(cells[0])
		if name == nil {
			t.Fatalf("%s:%d: no metric name in %q", metricsDoc, i+1, cells[0])
		}
		var labels []string
		for _, m := range backticked.FindAllStringSubmatch(cells[2], -1) {
			labels = append(labels, m[1])
		}
		sort.Strings(labels)
		var rs []string
		for _, r := range strings.Split(cells[3], ",") {
			rs = append(rs, strings.TrimSpace(r))
		}
		if _, dup := rows[name[1]]; dup {
			t.Errorf("%s:%d: %s documented twice", metricsDoc, i+1, name[1])
		}
		rows[name[1]] = docRow{line: i + 1, info: metricInfo{Type: strings.TrimSpace(cells[1]), Labels: labels}, roles: rs, rawRow: line}
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no reference table", metricsDoc)
	}
	return rows
}

// TestMetricsDoc: docs/metrics.md documents exactly the metrics the roles
// register, with their types, labels and roles.
func TestMetricsDoc(t *testing.T) {
	all, by := exportedAnywhere(t)
	doc := readMetricsDoc(t)
	for _, name := range slices.Sorted(maps.Keys(all)) {
		info, roles := all[name], by[name]
		row, ok := doc[name]
		if !ok {
			t.Errorf("%s: %s (%s, labels %v, exported by %s) is not documented; a row:\n| `%s` | %s | %s | %s | ... |",
				metricsDoc, name, info.Type, info.Labels, strings.Join(roles, ", "),
				name, info.Type, quoteLabels(info.Labels), strings.Join(roles, ", "))
			continue
		}
		if row.info.Type != info.Type {
			t.Errorf("%s:%d: %s is a %s, the doc says %s", metricsDoc, row.line, name, info.Type, row.info.Type)
		}
		if !slices.Equal(row.info.Labels, info.Labels) {
			t.Errorf("%s:%d: %s has labels %v, the doc says %v", metricsDoc, row.line, name, info.Labels, row.info.Labels)
		}
		if !slices.Equal(row.roles, roles) {
			t.Errorf("%s:%d: %s is exported by %v, the doc says %v", metricsDoc, row.line, name, roles, row.roles)
		}
	}
	for name, row := range doc {
		if _, ok := all[name]; !ok {
			t.Errorf("%s:%d: %s is documented but no role exports it", metricsDoc, row.line, name)
		}
	}
}

func quoteLabels(ls []string) string {
	q := make([]string, len(ls))
	for i, l := range ls {
		q[i] = "`" + l + "`"
	}
	return strings.Join(q, ", ")
}

// The scrape configuration the doc shows is deploy/grafana/prometheus.yml,
// and it names the stack's services on the port of their admin listeners.
func TestScrapeConfigDoc(t *testing.T) {
	doc, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(grafanaDir, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```yaml\n"+string(file)+"```") {
		t.Errorf("%s does not show deploy/grafana/prometheus.yml as it is", metricsDoc)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			Job string `yaml:"job_name"`
			DNS []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(file, &cfg); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"swarmgate-edge": "tasks.swarmgate_edge", "swarmgate-control": "tasks.swarmgate_control"}
	got := map[string]string{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, d := range sc.DNS {
			if d.Port != 8080 || d.Type != "A" || len(d.Names) != 1 {
				t.Errorf("job %s: dns_sd_configs %+v, want one name, type A, port 8080 (--admin)", sc.Job, d)
				continue
			}
			got[sc.Job] = d.Names[0]
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("scrape jobs %v, want %v", got, want)
	}
	if !slices.Equal(cfg.RuleFiles, []string{"alerts.yml"}) {
		t.Errorf("rule_files %v, want [alerts.yml]", cfg.RuleFiles)
	}
	for _, cmd := range []*struct {
		name, flag string
		f          func() string
	}{
		{"edge", "admin", func() string { return newEdgeCmd(&logOptions{}).Flags().Lookup("admin").DefValue }},
		{"control", "admin", func() string { return newControlCmd(&logOptions{}).Flags().Lookup("admin").DefValue }},
	} {
		if got := cmd.f(); got != ":8080" {
			t.Errorf("%s --%s defaults to %q; the scrape configuration says :8080", cmd.name, cmd.flag, got)
		}
	}
}

// The production stack publishes no admin port, turns no profiles on (nor
// does the edge by default), and puts the edges and the control plane on the
// internal network that Prometheus joins.
func TestStackAdminNotPublished(t *testing.T) {
	b, err := os.ReadFile(productionStack)
	if err != nil {
		t.Fatal(err)
	}
	var stack struct {
		Services map[string]struct {
			Command  []string `yaml:"command"`
			Ports    []map[string]any
			Networks []string `yaml:"networks"`
		} `yaml:"services"`
		Networks map[string]struct {
			Name       string `yaml:"name"`
			Internal   bool   `yaml:"internal"`
			Attachable bool   `yaml:"attachable"`
		} `yaml:"networks"`
	}
	if err := yaml.Unmarshal(b, &stack); err != nil {
		t.Fatal(err)
	}
	for name, svc := range stack.Services {
		for _, p := range svc.Ports {
			if fmt.Sprint(p["target"]) == "8080" {
				t.Errorf("service %s publishes the admin port: %v", name, p)
			}
		}
		for _, c := range svc.Command {
			if strings.HasPrefix(c, "--admin-pprof") {
				t.Errorf("service %s turns profiles on: %s", name, c)
			}
		}
		if name == "edge" || name == "control" {
			if !slices.Contains(svc.Networks, "metrics") {
				t.Errorf("service %s is not on the metrics network: %v", name, svc.Networks)
			}
		}
	}
	if def := newEdgeCmd(&logOptions{}).Flags().Lookup("admin-pprof").DefValue; def != "false" {
		t.Errorf("edge --admin-pprof defaults to %s: profiles must be off unless asked", def)
	}
	m := stack.Networks["metrics"]
	if m.Name != "${SWARMGATE_METRICS_NETWORK:-swarmgate-metrics}" || !m.Internal || !m.Attachable {
		t.Errorf("metrics network %+v, want swarmgate-metrics, internal and attachable", m)
	}
	doc, _ := os.ReadFile(metricsDoc)
	if !strings.Contains(string(doc), "networks: [swarmgate-metrics]") {
		t.Errorf("%s: the Prometheus service does not join swarmgate-metrics", metricsDoc)
	}
}

// promQL holds the metrics and labels one expression uses.
type promQL struct {
	metrics map[string]map[string]bool // metric -> labels matched on it
	labels  map[string]bool            // labels of by, without, on, ignoring, group_left, group_right
}

var (
	identRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*`)
	// matcherRE is one label matcher of a selector: name, operator, value.
	matcherRE = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?`)
)

// PromQL's words that are not metric names: those followed by a list of
// labels, the other keywords, and the aggregation operators (which may be
// followed by by or without before their parenthesis).
var (
	promLabelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	promKeywords   = map[string]bool{"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true}
	promAggregates = map[string]bool{"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true,
		"stdvar": true, "count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
		"limitk": true, "limit_ratio": true}
)

// parsePromQL finds the metric names, label matchers and grouping labels of
// a PromQL expression (or of a Grafana query: label_values(metric, label)).
// It is no PromQL parser: promtool judges the syntax; this reads names.
func parsePromQL(expr string) (promQL, error) {
	q := promQL{metrics: map[string]map[string]bool{}, labels: map[string]bool{}}
	s := expr
	for s != "" {
		switch c := s[0]; {
		case c == '"' || c == '\'':
			end := strings.IndexByte(s[1:], c)
			if end < 0 {
				return q, fmt.Errorf("unterminated string in %q", expr)
			}
			s = s[end+2:]
		case c == '[': // a range or subquery duration
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return q, fmt.Errorf("unterminated range in %q", expr)
			}
			s = s[end+1:]
		case c == '$': // a Grafana variable
			s = s[1:]
			s = s[len(identRE.FindString(s)):]
		case c >= '0' && c <= '9' || c == '.':
			i := 0
			for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == 'e') {
				i++
			}
			s = s[i:]
		case identRE.MatchString(s):
			id := identRE.FindString(s)
			s = s[len(id):]
			rest := strings.TrimLeft(s, " \t\n")
			switch {
			case id == "label_values": // label_values(metric, label)
				args, after, ok := strings.Cut(strings.TrimPrefix(rest, "("), ")")
				if !ok {
					return q, fmt.Errorf("label_values without arguments in %q", expr)
				}
				metric, label, _ := strings.Cut(args, ",")
				metric, label = strings.TrimSpace(metric), strings.TrimSpace(label)
				q.metrics[metric] = map[string]bool{label: true}
				s = after
			case promLabelLists[id] && strings.HasPrefix(rest, "("):
				list, after, ok := strings.Cut(rest[1:], ")")
				if !ok {
					return q, fmt.Errorf("unterminated label list in %q", expr)
				}
				for _, l := range strings.Split(list, ",") {
					if l = strings.TrimSpace(l); l != "" {
						q.labels[l] = true
					}
				}
				s = after
			case promLabelLists[id], promKeywords[id], promAggregates[id], strings.HasPrefix(rest, "("): // a keyword, a function or an aggregation
			default:
				ls := q.metrics[id]
				if ls == nil {
					ls = map[string]bool{}
					q.metrics[id] = ls
				}
				if strings.HasPrefix(rest, "{") {
					body := rest[1:]
					for !strings.HasPrefix(strings.TrimSpace(body), "}") {
						m := matcherRE.FindStringSubmatch(body)
						if m == nil {
							return q, fmt.Errorf("cannot read the matchers of %s in %q", id, expr)
						}
						ls[m[1]] = true
						body = body[len(m[0]):]
					}
					s = strings.TrimSpace(body)[1:]
				}
			}
		default:
			s = s[1:]
		}
	}
	return q, nil
}

func TestParsePromQL(t *testing.T) {
	q, err := parsePromQL(`histogram_quantile(0.99, sum by (route, le) (rate(a_bucket{route=~"$route",code!="5.."}[$__rate_interval]))) / ignoring(x) b > 14 * 86400 or (max without (y) (e)) or label_values(c, d)`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]bool{"a_bucket": {"route": true, "code": true}, "b": {}, "c": {"d": true}, "e": {}}
	if fmt.Sprint(q.metrics) != fmt.Sprint(want) {
		t.Errorf("metrics %v, want %v", q.metrics, want)
	}
	if fmt.Sprint(q.labels) != fmt.Sprint(map[string]bool{"route": true, "le": true, "x": true, "y": true}) {
		t.Errorf("grouping labels %v", q.labels)
	}
}

// targetLabels are the labels Prometheus adds to every series it scrapes.
var targetLabels = map[string]bool{"job": true, "instance": true}

// checkExpr reports what an expression uses that swarmgate does not export:
// a metric (a histogram's _bucket, _sum and _count included), a label
// matched on a metric that has no such label, a grouping label that none of
// its metrics has.
func checkExpr(all map[string]metricInfo, expr string) []string {
	q, err := parsePromQL(expr)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	have := map[string]bool{}
	for name, matched := range q.metrics {
		labels, ok := labelsOf(all, name)
		if !ok {
			problems = append(problems, "metric "+name+" is not exported")
			continue
		}
		for l := range labels {
			have[l] = true
		}
		for l := range matched {
			if !labels[l] && !targetLabels[l] {
				problems = append(problems, fmt.Sprintf("metric %s has no label %s", name, l))
			}
		}
	}
	for l := range q.labels {
		if !have[l] && !targetLabels[l] {
			problems = append(problems, fmt.Sprintf("grouping label %s is on none of %v", l, slices.Sorted(maps.Keys(q.metrics))))
		}
	}
	sort.Strings(problems)
	return problems
}

// labelsOf returns the labels of a series name: a metric's, or a histogram
// series'; up is Prometheus's own.
func labelsOf(all map[string]metricInfo, name string) (map[string]bool, bool) {
	set := func(ls []string) map[string]bool {
		m := map[string]bool{}
		for _, l := range ls {
			m[l] = true
		}
		return m
	}
	if name == "up" || runtimeSet[name] {
		return map[string]bool{}, true
	}
	if info, ok := all[name]; ok {
		return set(info.Labels), true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if info, ok := all[strings.TrimSuffix(name, suffix)]; ok && strings.HasSuffix(name, suffix) && info.Type == "histogram" {
			ls := set(info.Labels)
			if suffix == "_bucket" {
				ls["le"] = true
			}
			return ls, true
		}
	}
	return nil, false
}

func TestCheckExpr(t *testing.T) {
	all := map[string]metricInfo{"a_seconds": {Type: "histogram", Labels: []string{"route"}}, "b_total": {Type: "counter", Labels: []string{"code"}}}
	for _, tt := range []struct {
		expr string
		want int
	}{
		{`sum by (route, le) (rate(a_seconds_bucket{route="x"}[5m]))`, 0},
		{`sum by (instance) (rate(b_total{code=~"5..", job="e"}[5m])) / up`, 0},
		{`rate(b_total_bucket[5m])`, 1},          // not a histogram
		{`rate(c_total[5m])`, 1},                 // not exported
		{`sum by (route) (b_total)`, 1},          // b has no route label
		{`b_total{state="up"}`, 1},               // nor a state label
		{`rate(a_seconds_count{le="1"}[5m])`, 1}, // le is on _bucket only
	} {
		if got := checkExpr(all, tt.expr); len(got) != tt.want {
			t.Errorf("checkExpr(%s) = %v, want %d problems", tt.expr, got, tt.want)
		}
	}
}

// dashboardExprs returns every query of a Grafana dashboard: panel targets
// (rows' panels included) and query variables.
func dashboardExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]string{}
	type panel struct {
		Title   string            `json:"title"`
		Panels  []json.RawMessage `json:"panels"`
		Targets []struct {
			Expr  string `json:"expr"`
			RefID string `json:"refId"`
		} `json:"targets"`
	}
	var walk func([]json.RawMessage)
	walk = func(raws []json.RawMessage) {
		for _, raw := range raws {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("%s: panel: %v", path, err)
			}
			for _, tg := range p.Targets {
				out["panel "+p.Title+" "+tg.RefID] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if json.Unmarshal(v.Query, &s) != nil {
				t.Fatalf("%s: variable %s: query %s", path, v.Name, v.Query)
			}
			q.Query = s
		}
		out["variable "+v.Name] = q.Query
	}
	return out
}

// alertExprs returns the expression of every rule of a rules file.
func alertExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["rule "+r.Alert+r.Record] = r.Expr
		}
	}
	return out
}

// TestDashboardAndAlertsUseExportedMetrics: every metric and label that the
// Grafana dashboard and the alert rules use is one that swarmgate exports,
// and the dashboard covers what the docs promise.
func TestDashboardAndAlertsUseExportedMetrics(t *testing.T) {
	all, _ := exportedAnywhere(t)
	exprs := dashboardExprs(t, filepath.Join(grafanaDir, "dashboard.json"))
	if len(exprs) < 20 {
		t.Fatalf("dashboard: %d queries found; the parse missed them", len(exprs))
	}
	rules := alertExprs(t, filepath.Join(grafanaDir, "alerts.yml"))
	wantAlerts := []string{"SwarmgateEdgeDown", "SwarmgateHighErrorRatio", "SwarmgateRouteWithoutEndpoint",
		"SwarmgateCertificateExpiringSoon", "SwarmgateDockerAPIUnreachable"}
	for _, a := range wantAlerts {
		if _, ok := rules["rule "+a]; !ok {
			t.Errorf("alerts.yml has no %s", a)
		}
	}
	doc, _ := os.ReadFile(metricsDoc)
	queries := docQueries(t, string(doc))
	if len(queries) == 0 {
		t.Errorf("%s: no promql block", metricsDoc)
	}
	used := map[string]bool{}
	for where, expr := range mergeMaps(exprs, rules, queries) {
		if strings.HasPrefix(where, "rule ") && !strings.Contains(string(doc), "`"+strings.TrimPrefix(where, "rule ")+"`") {
			t.Errorf("%s is not in the alerts table of %s", where, metricsDoc)
		}
		for _, p := range checkExpr(all, expr) {
			t.Errorf("%s: %s\n\t%s", where, p, expr)
		}
		q, _ := parsePromQL(expr)
		for m := range q.metrics {
			used[m] = true
		}
	}
	// What the dashboard is for (issue: requests, errors, latency per route,
	// endpoints, retries, TLS, discovery lag, socket-proxy coalescing).
	for _, m := range []string{"swarmgate_http_requests_total", "swarmgate_http_request_duration_seconds_bucket",
		"swarmgate_route_endpoints", "swarmgate_retries_total", "swarmgate_upstream_errors_total",
		"swarmgate_tls_handshakes_total", "swarmgate_tls_certificate_expiry_timestamp_seconds",
		"swarmgate_change_to_table_seconds_bucket", "swarmgate_swarm_last_sync_timestamp_seconds",
		"swarmgate_socketproxy_coalesced_requests_total", "swarmgate_http_request_bytes_total"} {
		if !used[m] {
			t.Errorf("neither the dashboard nor the rules use %s", m)
		}
	}
}

// docQueries returns the lines of the doc's promql blocks.
func docQueries(t *testing.T, doc string) map[string]string {
	out := map[string]string{}
	for i, block := range strings.Split(doc, "```promql\n")[1:] {
		body, _, ok := strings.Cut(block, "```")
		if !ok {
			t.Fatalf("%s: unterminated promql block", metricsDoc)
		}
		for j, line := range strings.Split(strings.TrimSpace(body), "\n") {
			out[fmt.Sprintf("%s promql block %d line %d", metricsDoc, i+1, j+1)] = line
		}
	}
	return out
}

func mergeMaps(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// TestPromtool: Prometheus's own checker accepts the rules, the scrape
// configuration and the dashboard's and doc's queries, and the rules' unit
// tests pass (alerts_test.yml: each alert
// fires on the series that should fire it, and not on healthy ones). Without
// promtool the test skips, except in CI, which installs it.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI: promtool required (Debian's prometheus package; .ci/run installs it)")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	// The dashboard's and the doc's queries, as recording rules: promtool
	// parses each (Grafana's variables given values).
	doc, _ := os.ReadFile(metricsDoc)
	exprs := mergeMaps(dashboardExprs(t, filepath.Join(grafanaDir, "dashboard.json")), docQueries(t, string(doc)))
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var queries []rule
	for _, where := range slices.Sorted(maps.Keys(exprs)) {
		if strings.HasPrefix(where, "variable ") {
			continue // label_values(...) is Grafana's, not PromQL
		}
		e := strings.NewReplacer("$__rate_interval", "5m", "$route", ".*").Replace(exprs[where])
		queries = append(queries, rule{Record: fmt.Sprintf("query:%d", len(queries)), Expr: e})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "queries", "rules": queries}}})
	if err != nil {
		t.Fatal(err)
	}
	queriesFile := filepath.Join(t.TempDir(), "queries.yml")
	if err := os.WriteFile(queriesFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"check", "config", "prometheus.yml"},
		{"test", "rules", "alerts_test.yml"},
		{"check", "rules", queriesFile},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = grafanaDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// The series of the rules' unit tests are series swarmgate exports.
func TestAlertTestSeriesExported(t *testing.T) {
	all, _ := exportedAnywhere(t)
	b, err := os.ReadFile(filepath.Join(grafanaDir, "alerts_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			Series []struct {
				Series string `yaml:"series"`
			} `yaml:"input_series"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tc := range tests.Tests {
		for _, s := range tc.Series {
			n++
			for _, p := range checkExpr(all, s.Series) {
				t.Errorf("alerts_test.yml: %s: %s", s.Series, p)
			}
		}
	}
	if n == 0 {
		t.Fatal("alerts_test.yml: no input series")
	}
}
