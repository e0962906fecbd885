package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// The docs whose examples run as tests: every ```console block of each is
// run (see runDocExamples), so that a doc cannot drift from what the binary
// does.
var exampleDocs = []string{
	"CHECK.md",
	filepath.Join("..", "..", "docs", "migrate-interlock.md"),
	filepath.Join("..", "..", "docs", "labels.md"),
	filepath.Join("..", "..", "docs", "migrate-traefik.md"),
}

func TestDocExamples(t *testing.T) {
	for _, doc := range exampleDocs {
		t.Run(filepath.Base(doc), func(t *testing.T) { runDocExamples(t, doc) })
	}
}

// docBlock is one fenced block of a markdown file.
type docBlock struct {
	lang string
	line int // of the opening fence
	text string
}

func docBlocks(t *testing.T, doc string) []docBlock {
	t.Helper()
	data, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []docBlock
	var cur *docBlock
	for i, line := range strings.Split(string(data), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &docBlock{lang: strings.TrimPrefix(line, "```"), line: i + 1}
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: unclosed block", doc, cur.line)
	}
	return blocks
}

// fileHeader is the first line of a yaml block that is a file of the
// examples: "# NAME.yml".
var fileHeader = regexp.MustCompile(`^# ([\w.-]+\.ya?ml)\n`)

// runDocExamples runs the examples of a markdown doc, in order, in a
// directory of their own (with a copy of the doc's examples/ folder, if it
// has one):
//   - a ```yaml block whose first line is "# NAME.yml" is written to NAME;
//   - a ```console block is a session: each "$ " line is a command, and the
//     lines up to the next one are its output, stdout and stderr as a
//     terminal shows them. A command is `swarmgate ...` (an error is printed
//     as main prints it: "swarmgate: ..."), `cat FILE | swarmgate ...`,
//     `echo $?` (the last status) or `docker ...`. Docker commands need an
//     engine in swarm mode (the block is skipped without one, except in CI);
//     their output is not compared, the doc shows none, and the names they
//     create are given a unique prefix (removed again from the output, which
//     is then compared without the table padding the prefix changes).
//
// Other blocks (```sh, ```yaml without a file name) are not run.
func runDocExamples(t *testing.T, doc string) {
	blocks := docBlocks(t, doc)
	dir := t.TempDir()
	if ex := filepath.Join(filepath.Dir(doc), "examples"); dirExists(ex) {
		if err := os.CopyFS(filepath.Join(dir, "examples"), os.DirFS(ex)); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	sessions := 0
	for _, b := range blocks {
		switch {
		case b.lang == "yaml" && fileHeader.MatchString(b.text):
			name := fileHeader.FindStringSubmatch(b.text)[1]
			if err := os.WriteFile(name, []byte(b.text), 0o644); err != nil {
				t.Fatal(err)
			}
		case b.lang == "console":
			sessions++
			t.Run(fmt.Sprintf("line%d", b.line), func(t *testing.T) { runSession(t, doc, b) })
		}
	}
	if sessions == 0 {
		t.Fatalf("%s: no console examples", doc)
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// step is one command of a session and the output the doc shows.
type step struct {
	cmd  string
	line int
	want string
}

func parseSession(b docBlock) []step {
	var steps []step
	for i, line := range strings.Split(strings.TrimSuffix(b.text, "\n"), "\n") {
		if cmd, ok := strings.CutPrefix(line, "$ "); ok {
			steps = append(steps, step{cmd: cmd, line: b.line + 1 + i})
			continue
		}
		if len(steps) > 0 {
			steps[len(steps)-1].want += line + "\n"
		}
	}
	return steps
}

func runSession(t *testing.T, doc string, b docBlock) {
	steps := parseSession(b)
	if len(steps) == 0 {
		t.Fatalf("%s:%d: a console block with no command", doc, b.line)
	}
	var names *dockerNames
	for _, s := range steps {
		if strings.HasPrefix(s.cmd, "docker ") {
			names = newDockerNames(t, steps)
			break
		}
	}
	status := 0
	for _, s := range steps {
		args := shellWords(s.cmd)
		var got string
		switch {
		case s.cmd == "echo $?":
			got = fmt.Sprintf("%d\n", status)
		case args[0] == "docker":
			if s.want != "" {
				t.Fatalf("%s:%d: the doc shows output of a docker command, which is not compared", doc, s.line)
			}
			names.docker(t, args[1:])
			continue
		case args[0] == "swarmgate":
			got, status = runSwarmgate(t, "", names.rename(args[1:]))
		case len(args) > 4 && args[0] == "cat" && args[2] == "|" && args[3] == "swarmgate":
			in, err := os.ReadFile(args[1])
			if err != nil {
				t.Fatalf("%s:%d: %v", doc, s.line, err)
			}
			got, status = runSwarmgate(t, string(in), names.rename(args[4:]))
		default:
			t.Fatalf("%s:%d: %q: a console example runs swarmgate, cat FILE | swarmgate, echo $? or docker; write other commands in a sh block", doc, s.line, s.cmd)
		}
		want := s.want
		if names != nil {
			got, want = collapse(names.unname(got)), collapse(want)
		}
		if got != want {
			t.Errorf("%s:%d: $ %s\ngot:\n%s\nthe doc shows:\n%s", doc, s.line, s.cmd, got, want)
		}
	}
}

// runSwarmgate runs the root command as main does, and returns what a
// terminal shows and the exit status.
func runSwarmgate(t *testing.T, stdin string, args []string) (string, int) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	if err := root.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(&out, "swarmgate:", err)
		return out.String(), 1
	}
	return out.String(), 0
}

// shellWords splits a command line at spaces, keeping quoted words ('...'
// and "...") whole.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			w.WriteByte(c)
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

// dockerNames gives the networks, services and stacks of a session's docker
// commands a unique prefix, since the engine is shared, and removes them
// when the test ends.
type dockerNames struct {
	prefix string
	names  map[string]bool
	host   string
}

func newDockerNames(t *testing.T, steps []step) *dockerNames {
	t.Helper()
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	n := &dockerNames{names: map[string]bool{}, host: host}
	if out, err := n.run("info", "--format", "{{.Swarm.ControlAvailable}}"); err != nil || out != "true" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI: Docker Engine in swarm mode required: %v %s", err, out)
		}
		t.Skipf("no Docker Engine in swarm mode: %v %s", err, out)
	}
	b := make([]byte, 4)
	rand.Read(b)
	n.prefix = "sgdoc-" + hex.EncodeToString(b) + "-"
	var services, networks []string
	for _, s := range steps {
		args := shellWords(s.cmd)
		for i := 0; i+1 < len(args); i++ {
			switch {
			case args[0] == "docker" && args[i] == "--name":
				services = append(services, args[i+1])
				n.names[args[i+1]] = true
			case args[0] == "swarmgate" && args[i] == "--stack":
				n.names[args[i+1]] = true
			}
		}
		if len(args) > 3 && args[0] == "docker" && args[1] == "network" && args[2] == "create" {
			networks = append(networks, args[len(args)-1])
			n.names[args[len(args)-1]] = true
		}
	}
	t.Cleanup(func() {
		for _, s := range services {
			n.run("service", "rm", n.prefix+s)
		}
		for _, nw := range networks {
			// The services' removal takes a while to release the network.
			err := testkit.Wait(30*time.Second, 200*time.Millisecond, func() error {
				if out, err := n.run("network", "rm", n.prefix+nw); err != nil && !strings.Contains(out, "not found") {
					return fmt.Errorf("docker network rm %s: %v: %s", n.prefix+nw, err, out)
				}
				return nil
			})
			if err != nil {
				t.Log(err)
			}
		}
	})
	return n
}

func (n *dockerNames) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+n.host)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (n *dockerNames) docker(t *testing.T, args []string) {
	t.Helper()
	if out, err := n.run(n.rename(args)...); err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// rename prefixes the session's names among args; a nil n leaves them.
func (n *dockerNames) rename(args []string) []string {
	if n == nil {
		return args
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if n.names[a] {
			out[i] = n.prefix + a
		}
	}
	return out
}

func (n *dockerNames) unname(s string) string {
	return strings.ReplaceAll(s, n.prefix, "")
}

// TestDocLinks: every relative link of the docs (docs/*.md, README.md, this
// command's CHECK.md) names a file that exists, and a #fragment into a
// markdown file names one of its headings (GitHub's anchors: lower case,
// punctuation dropped, spaces as "-").
func TestDocLinks(t *testing.T) {
	root := filepath.Join("..", "..")
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, filepath.Join(root, "README.md"), "CHECK.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	fence := regexp.MustCompile("(?s)```.*?```")
	for _, doc := range docs {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(fence.ReplaceAllString(string(data), ""), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			file := doc
			if path != "" {
				file = filepath.Join(filepath.Dir(doc), filepath.FromSlash(path))
			}
			if _, err := os.Stat(file); err != nil {
				t.Errorf("%s: link %s: %v", doc, target, err)
				continue
			}
			if frag != "" && strings.HasSuffix(file, ".md") && !hasAnchor(t, file, frag) {
				t.Errorf("%s: link %s: %s has no heading with the anchor #%s", doc, target, file, frag)
			}
		}
	}
}

// hasAnchor reports whether a heading of the markdown file has the anchor.
func hasAnchor(t *testing.T, file, anchor string) bool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile("(?s)```.*?```").ReplaceAllString(string(data), "")
	drop := regexp.MustCompile(`[^\w\- ]`)
	for _, line := range strings.Split(text, "\n") {
		h := strings.TrimLeft(line, "#")
		if len(h) == len(line) || !strings.HasPrefix(h, " ") {
			continue
		}
		slug := strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(strings.TrimSpace(h)), ""), " ", "-")
		if slug == anchor {
			return true
		}
	}
	return false
}
