//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetd/fleetd/internal/api"
	"github.com/fleetd/fleetd/internal/testbed"
)

// chromium is Debian's headless browser (scripts/prereqs.sh installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: run `make prereqs` (as root it installs Debian's chromium) or put chromium on PATH")
	return ""
}

// TestStatusPageInChromium drives the status page in a real headless
// Chromium against a real daemon and a real replacement: the page asks for
// the token (never in a URL), pauses and resumes fleetd, cancels a queued
// request, shows the replacement's progress live and its outcome, and
// takes a screenshot (docs/status-page.png with FLEETD_UPDATE_SCREENSHOT=1).
func TestStatusPageInChromium(t *testing.T) {
	t.Parallel() // a fleet of its own
	bin := chromium(t)
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 24)
	listen := freeAddr(t)
	d := startDaemon(t, writeConfig(t, c, localFleetServer(t, c), t.TempDir(), listen, "replace:\n  throttle: 3MiB\n  concurrency: 2\n  poll: 500ms\n"), listen)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-quic", true), chromedp.WindowSize(1400, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(testbed.Context(t), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first run starts the browser, which lives as long as that run's
	// context: it gets the test's, so the bounded steps below never stop it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	// do runs actions, failing the test with the page's state.
	do := func(what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := chromedp.Do(tctx, actions...); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("%s: %v\npage:\n%s", what, err, html)
		}
	}
	// waitJS waits until a JavaScript expression is true.
	waitJS := func(what, expr string, timeout time.Duration) {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		// No polling timeout of Poll's own (its default is 30 s, whatever
		// the caller asked): tctx bounds the wait.
		poll := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(0))
		if _, err := chromedp.Run(tctx, poll); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("waiting for %s: %v\npage:\n%s", what, err, html)
		}
	}

	do("load the page and give it the token", time.Minute,
		chromedp.Navigate(d.url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), testToken),
		chromedp.Click(chromedp.CSS("#login-button")))
	waitJS("the page to show an active fleetd", `document.getElementById("role").textContent === "active" && document.querySelectorAll("#fleet tr[data-node]").length >= 4`, time.Minute)

	do("pause from the page", 10*time.Second, chromedp.Click(chromedp.CSS("#pause")))
	// Seen, not only set: a class's display rule can show a hidden element.
	const pausedShown = `getComputedStyle(document.getElementById("paused")).display !== "none"`
	waitJS("the page to show fleetd paused, and by whom", pausedShown+` && document.getElementById("paused").textContent.includes("by status page") && document.getElementById("pause").textContent === "Resume"`, 30*time.Second)
	if st := d.status(t); !st.Controller.Paused {
		t.Fatal("the page's pause did not pause fleetd")
	}

	apictx := testbed.Context(t)
	one, two := int32(1), int32(2)
	first, err := d.client.Replace(apictx, api.ReplaceRequest{Broker: &one})
	if err != nil {
		t.Fatal(err)
	}
	second, err := d.client.Replace(apictx, api.ReplaceRequest{Broker: &two})
	if err != nil {
		t.Fatal(err)
	}
	waitJS("both queued requests on the page", fmt.Sprintf(`!!(document.querySelector('#queue tr[data-request=%q]') && document.querySelector('#queue tr[data-request=%q]'))`, first.Queued.ID, second.Queued.ID), 30*time.Second)
	cancelButton := chromedp.CSS(fmt.Sprintf(`button[data-cancel=%q]`, second.Queued.ID))
	// The button must be what a person's click at its centre reaches (a
	// wide queue table once spilled under the next section and covered it).
	reached, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const b = document.querySelector('button[data-cancel=%q]'); b.scrollIntoView({block: "center"}); const r = b.getBoundingClientRect(); const e = document.elementFromPoint(r.x + r.width/2, r.y + r.height/2); return e === b ? "button" : (e ? e.outerHTML.slice(0, 120) : "nothing"); })()`, second.Queued.ID)))
	if err != nil || reached != "button" {
		t.Fatalf("a click on the Cancel button reaches %s (%v), not the button", reached, err)
	}
	do("click Cancel on the second request", 10*time.Second, chromedp.Click(cancelButton))
	waitJS("the Cancel button to ask for confirmation", fmt.Sprintf(`document.querySelector('button[data-cancel=%q]').textContent === "Confirm cancel"`, second.Queued.ID), 10*time.Second)
	if st := d.status(t); len(st.Controller.Queue) != 2 {
		t.Fatalf("one click cancelled without confirmation: queue %+v", st.Controller.Queue)
	}
	do("confirm the cancel", 10*time.Second, chromedp.Click(cancelButton))
	waitJS("the cancelled request to leave the page's queue", fmt.Sprintf(`!document.querySelector('#queue tr[data-request=%q]')`, second.Queued.ID), 30*time.Second)
	st := d.status(t)
	if len(st.Controller.Queue) != 1 || st.Controller.Queue[0].ID != first.Queued.ID || len(st.Controller.Dropped) != 1 || !strings.HasPrefix(st.Controller.Dropped[0].Reason, "cancelled by status page (from 127.0.0.1:") {
		t.Fatalf("after the page's cancel: queue %+v dropped %+v", st.Controller.Queue, st.Controller.Dropped)
	}

	do("resume from the page", 10*time.Second, chromedp.Click(chromedp.CSS("#pause")))
	waitJS("the page to show fleetd no longer paused", `!(`+pausedShown+`) && document.getElementById("pause").textContent === "Pause"`, 30*time.Second)
	waitJS("the replacement's copy to progress on the page", `(() => { const b = document.getElementById("progress-bar"); return !b.hidden && b.value > 0 && b.value < b.max; })()`, 3*time.Minute)
	// From the top: the sticky header is drawn where the view was scrolled.
	waitJS("the page scrolled to its top", `(() => { window.scrollTo(0, 0); return window.scrollY === 0; })()`, 10*time.Second)
	sctx, cancelShot := context.WithTimeout(ctx, 30*time.Second)
	// Quality 100 is a PNG; any other is a JPEG.
	shot, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	cancelShot()
	if err != nil {
		t.Fatal(err)
	}
	// The screenshot in the docs is refreshed on request, so a test run
	// leaves the work tree as it found it.
	if !bytes.HasPrefix(shot, []byte("\x89PNG")) {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(shot))
	}
	if os.Getenv("FLEETD_UPDATE_SCREENSHOT") != "" {
		if err := os.WriteFile("../../docs/status-page.png", shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	progress, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#progress-text")))
	if err != nil || !strings.Contains(progress, "partitions") || !strings.Contains(progress, " of ") {
		t.Errorf("progress text %q (%v)", progress, err)
	}
	waitJS("the completed replacement in the page's history", `(() => { const o = document.querySelector("#history td.outcome"); return !!o && o.textContent === "completed"; })()`, 4*time.Minute)
	href, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || strings.Contains(href, testToken) {
		t.Errorf("the page's URL %s (%v) holds the token", href, err)
	}
	d.stop(t)
	checkLogs(t, d.logs.String())
}
