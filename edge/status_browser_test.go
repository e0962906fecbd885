package edge

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// screenshotEnv names the file TestStatusPageBrowser writes the page's
// screenshot to, and beside it NAME-phone.png as a phone shows it after
// the change (docs/status.png is made this way; see docs/status.md).
const screenshotEnv = "SWARMGATE_STATUS_SCREENSHOT"

// chromium returns the path of a Chromium to drive. Without one the test
// fails in CI (CI=true: .ci/run installs Debian's chromium) and is skipped
// elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH: the status page's browser test must run in CI (.ci/run installs Debian's chromium)")
	}
	t.Skip("no chromium on PATH (apt-get install chromium); skipping the status page's browser test, which CI runs")
	return ""
}

// TestStatusPageBrowser loads the status page in headless Chromium: it
// shows the routes the test created, follows a route change without a
// reload (the page's script fetches the body again), narrows to what the
// filter matches, and fits a phone's width.
func TestStatusPageBrowser(t *testing.T) {
	exe := chromium(t)
	s := newStatusScene(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // root in CI
		chromedp.Flag("headless", "new"),
		chromedp.WindowSize(1100, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer bcancel()

	err := chromedp.Do(bctx,
		chromedp.Navigate(s.url+"/"),
		chromedp.WaitVisible(chromedp.CSS(`article[data-route="web-canary"]`)),
		chromedp.Evaluate[chromedp.Void](`window.loadedOnce = true`),
	)
	if err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	text, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#routes`)))
	if err != nil {
		t.Fatalf("reading the routes: %v", err)
	}
	for _, want := range []string{"app.example.org", "web-canary", "weight 90 · 90%", "weight 10 · 10%", "TLS certificate shop"} {
		if !strings.Contains(text, want) {
			t.Errorf("the routes section lacks %q:\n%s", want, text)
		}
	}
	if path := os.Getenv(screenshotEnv); path != "" {
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(png))
	}

	// Shift the canary to half and publish a new route: a new table is
	// swapped into the edge, and the open page follows.
	cfg := s.config()
	cfg.Routes[0].Weight, cfg.Routes[1].Weight = 50, 50
	api := testkit.Route("api", []string{"api.example.org"}, "/v1", testkit.Addr(testkit.Backend(t, "api-1")))
	api.CreatedAt = time.Unix(5, 0)
	cfg.Routes = append(cfg.Routes, api)
	s.apply(cfg)
	testkit.Eventually(t, 30*time.Second, 250*time.Millisecond, func() error {
		shown, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector('article[data-route="api"]') !== null &&
			document.querySelector('article[data-route="web"]').textContent.includes('weight 50 · 50%')`))
		switch {
		case err != nil:
			return fmt.Errorf("reading the page: %w", err)
		case !shown:
			return fmt.Errorf("the page does not show the new table yet")
		}
		return nil
	})
	if same, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.loadedOnce === true`)); err != nil || !same {
		t.Fatalf("the page was reloaded to show the change (err %v)", err)
	}

	// The filter narrows the page as one types, and the address keeps it.
	if err := chromedp.Do(bctx, chromedp.SendKeys(chromedp.CSS(`#filter`), "shop")); err != nil {
		t.Fatalf("typing in the filter: %v", err)
	}
	testkit.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		narrowed, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`location.search === '?q=shop' &&
			document.querySelector('article[data-route="shop"]') !== null &&
			document.querySelector('article[data-route="web"]') === null`))
		switch {
		case err != nil:
			return fmt.Errorf("reading the page: %w", err)
		case !narrowed:
			return fmt.Errorf("the page is not narrowed to shop yet")
		}
		return nil
	})
	if err := chromedp.Do(bctx, chromedp.Evaluate[chromedp.Void](`(() => {
		const f = document.getElementById('filter');
		f.value = '';
		f.dispatchEvent(new Event('input'));
	})()`)); err != nil {
		t.Fatalf("clearing the filter: %v", err)
	}
	testkit.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		if all, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector('article[data-route="web"]') !== null`)); err != nil || !all {
			return fmt.Errorf("the page does not list every route again (err %v)", err)
		}
		return nil
	})

	// On a phone's width nothing runs off the side.
	err = chromedp.Do(bctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile),
		chromedp.Sleep(200*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("emulating a phone: %v", err)
	}
	fits, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
	if err != nil || !fits {
		widths, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.documentElement.scrollWidth + ' > ' + window.innerWidth`))
		t.Fatalf("on a 390px wide phone the page is wider than the screen (%s, err %v)", widths, err)
	}
	if path := os.Getenv(screenshotEnv); path != "" {
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		phone := strings.TrimSuffix(path, ".png") + "-phone.png"
		if err := os.WriteFile(phone, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", phone, len(png))
	}
}
