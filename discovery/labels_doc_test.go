package discovery

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The labels reference for users, docs/labels.md, holds tables generated
// from the key tables (routeKeys, interlockKeys) and the defaults of
// LABELS.md between these markers. TestLabelsReference fails when they are
// not what the tables say; SWARMGATE_UPDATE_DOCS=1 rewrites them.
const (
	refDoc   = "../docs/labels.md"
	refBegin = "<!-- BEGIN generated from discovery/keys.go by TestLabelsReference: do not edit -->\n"
	refEnd   = "<!-- END generated -->\n"
)

func TestLabelsReference(t *testing.T) {
	want := labelsReference(t)
	path := filepath.FromSlash(refDoc)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i, j := strings.Index(doc, refBegin), strings.Index(doc, refEnd)
	if i < 0 || j < i {
		t.Fatalf("%s: no generated section (%q ... %q)", refDoc, refBegin, refEnd)
	}
	got := doc[i+len(refBegin) : j]
	if got == want {
		return
	}
	if os.Getenv("SWARMGATE_UPDATE_DOCS") == "1" {
		doc = doc[:i+len(refBegin)] + want + doc[j:]
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s rewritten", refDoc)
		return
	}
	t.Errorf("%s disagrees with the key tables (SWARMGATE_UPDATE_DOCS=1 go test ./discovery -run TestLabelsReference rewrites it); want:\n%s", refDoc, want)
}

// labelsReference renders the tables of docs/labels.md: every route key in
// the order of routeKeys, with what it is (its doc line), the routes it
// applies to, how named routes treat it and its default as LABELS.md gives
// it; then every Interlock label and the key it sets.
func labelsReference(t *testing.T) string {
	t.Helper()
	defaults := labelDefaults(t)
	var b strings.Builder
	b.WriteString("| label | what | routes | default |\n|---|---|---|---|\n")
	for _, k := range routeKeys() {
		label := "`" + labelPrefix + k.name + "`"
		if k.suffix {
			label = "`" + labelPrefix + k.name + "<Name>`"
		}
		applies := map[kind]string{kindHTTP: "HTTP", kindL4: "L4", kindBoth: "HTTP, L4"}[k.kind]
		switch {
		case k.publishes:
			applies += "; publishes the route"
		case k.inherited:
			applies += "; named routes inherit it"
		}
		def, ok := defaults[k.name]
		if !ok {
			t.Errorf("LABELS.md: no default for %s%s", labelPrefix, k.name)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", label, k.doc, applies, def)
	}
	meanings := interlockMeanings(t)
	b.WriteString("\n| Interlock label | swarmgate meaning |\n|---|---|\n")
	for _, k := range interlockKeys() {
		m, ok := meanings[k.name]
		if !ok {
			t.Errorf("LABELS.md: no meaning for %s%s", interlockPrefix, k.name)
		}
		fmt.Fprintf(&b, "| `%s%s` | %s |\n", interlockPrefix, k.name, m)
	}
	return b.String()
}

// labelDefaults returns the default column of LABELS.md's swarmgate table,
// by route key.
func labelDefaults(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	keys := routeKeys()
	for _, row := range labelRows(t, labelPrefix) {
		if len(row.cells) != 3 {
			continue
		}
		for _, label := range row.labels {
			key, ok := docKey(label)
			if k := lookupKey(keys, key); ok && k != nil {
				out[k.name] = row.cells[2]
			}
		}
	}
	return out
}

// interlockMeanings returns the meaning column of LABELS.md's Interlock
// table, by Interlock key.
func interlockMeanings(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, row := range labelRows(t, interlockPrefix) {
		if len(row.cells) != 2 {
			continue
		}
		for _, label := range row.labels {
			out[strings.TrimPrefix(label, interlockPrefix)] = row.cells[1]
		}
	}
	return out
}

// docRow is a row of a LABELS.md table.
type docRow struct {
	labels []string // the labels in code spans of the first cell
	cells  []string // trimmed, links made to point from docs/
}

// labelRows returns the rows of LABELS.md's tables whose first cell names
// labels with prefix.
func labelRows(t *testing.T, prefix string) []docRow {
	t.Helper()
	doc, err := os.ReadFile("LABELS.md")
	if err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile("`([^`]+)`")
	link := regexp.MustCompile(`\]\(([^)]*)\)`)
	var rows []docRow
	for line := range strings.SplitSeq(string(doc), "\n") {
		if !strings.HasPrefix(line, "| `"+prefix) {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		row := docRow{}
		for _, m := range code.FindAllStringSubmatch(cells[0], -1) {
			if strings.HasPrefix(m[1], prefix) {
				row.labels = append(row.labels, m[1])
			}
		}
		for _, c := range cells {
			c = link.ReplaceAllStringFunc(strings.TrimSpace(c), func(m string) string {
				target := m[2 : len(m)-1]
				if strings.HasPrefix(target, "#") {
					return "](../discovery/LABELS.md" + target + ")"
				}
				return "](../discovery/" + target + ")"
			})
			// LABELS.md's "below" is its own text, not docs/labels.md's.
			c = strings.ReplaceAll(c, "(see below)", "(see [LABELS.md](../discovery/LABELS.md#interlock-labels))")
			row.cells = append(row.cells, c)
		}
		rows = append(rows, row)
	}
	return rows
}
