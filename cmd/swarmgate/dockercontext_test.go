package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// TestDockerContext lays out a Docker CLI configuration as `docker context
// create` writes it and reads the endpoint back.
func TestDockerContext(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, ".docker")
	sum := sha256.Sum256([]byte("prod"))
	id := hex.EncodeToString(sum[:])
	write := func(path, data string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	// No configuration at all: the default context.
	if host, tls, err := dockerContext(getenv, home); host != "" || tls != "" || err != nil {
		t.Fatalf("no config: %q %q %v", host, tls, err)
	}
	write(filepath.Join(dir, "config.json"), `{"auths":{},"currentContext":"prod"}`)
	write(filepath.Join(dir, "contexts", "meta", id, "meta.json"),
		`{"Name":"prod","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://manager1:2376","SkipTLSVerify":false}}}`)
	if host, tls, err := dockerContext(getenv, home); host != "tcp://manager1:2376" || tls != "" || err != nil {
		t.Fatalf("current context: %q %q %v", host, tls, err)
	}
	write(filepath.Join(dir, "contexts", "tls", id, "docker", "ca.pem"), "ca")
	if _, tls, _ := dockerContext(getenv, home); tls != filepath.Join(dir, "contexts", "tls", id, "docker") {
		t.Fatalf("TLS directory %q", tls)
	}
	// DOCKER_CONTEXT wins over config.json; "default" is the CLI's default.
	env["DOCKER_CONTEXT"] = "default"
	if host, _, err := dockerContext(getenv, home); host != "" || err != nil {
		t.Fatalf("DOCKER_CONTEXT=default: %q %v", host, err)
	}
	env["DOCKER_CONTEXT"] = "missing"
	if _, _, err := dockerContext(getenv, home); err == nil {
		t.Fatal("an unknown context was accepted")
	}
}
