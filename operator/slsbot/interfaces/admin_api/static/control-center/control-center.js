// slsbot Control Center: plain JavaScript, no library, no build step. Served by the admin API at /ui under a
// Content-Security-Policy that allows only this file as script (no inline script) and fetches only from the API.
// The token lives in sessionStorage (this tab only) and goes only in the Authorization header, never in a URL.
// Every text from the API is put in the page with textContent, never parsed as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "slsbot-admin-token";
  const POLL_MS = 3000; // the next look after a good answer
  const MAX_BACKOFF_MS = 60000; // the longest wait after failures (doubling from POLL_MS)

  const $ = (id) => document.getElementById(id);
  let timer = null;
  let failures = 0;
  let generation = 0; // bumped at each navigation: an answer to an older view is dropped

  // --- the API -----------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) };
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let payload = null;
    try {
      payload = await response.json();
    } catch (_) {
      payload = null;
    }
    if (!response.ok) {
      let detail = payload && payload.detail ? payload.detail : response.statusText;
      if (Array.isArray(detail)) detail = detail.map((d) => d.msg).join("; ");
      throw new ApiError(response.status, String(detail));
    }
    return { body: payload, headers: response.headers };
  }

  // --- small helpers -----------------------------------------------------------------------------------------

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function money(value) {
    if (value === null || value === undefined) return "–";
    return Number(value).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(2) + " %";
  }

  function signed(value) {
    if (value === null || value === undefined) return "–";
    return (value > 0 ? "+" : "") + money(value);
  }

  function when(ms) {
    return new Date(ms).toISOString().slice(0, 16).replace("T", " ") + "Z";
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.appendChild(cell);
      else td.textContent = cell === null || cell === undefined ? "–" : String(cell);
      tr.appendChild(td);
    }
    return tr;
  }

  function fill(tableId, rows, emptyText) {
    const body = $(tableId).querySelector("tbody");
    body.replaceChildren(...rows);
    if (rows.length === 0) {
      const tr = row([emptyText]);
      tr.firstChild.colSpan = $(tableId).querySelectorAll("thead th").length;
      body.appendChild(tr);
    }
  }

  function showMessage(text, kind) {
    const box = $("message");
    box.textContent = text;
    box.className = kind || "error";
    box.hidden = !text;
  }

  function inNamespace(namespace) {
    // The query that picks the object's namespace (a name may exist in several).
    return "?namespace=" + encodeURIComponent(namespace);
  }

  // --- the confirmation dialog and the actions -------------------------------------------------------------

  function confirmAction(text) {
    return new Promise((resolve) => {
      const dialog = $("confirm");
      $("confirm-text").textContent = text;
      const done = (answer) => {
        $("confirm-ok").onclick = null;
        $("confirm-cancel").onclick = null;
        dialog.close();
        resolve(answer);
      };
      $("confirm-ok").onclick = () => done(true);
      $("confirm-cancel").onclick = () => done(false);
      dialog.oncancel = () => done(false);
      dialog.showModal();
    });
  }

  function actionButton(label, question, method, path, body, done) {
    const button = el("button", label, "action");
    button.type = "button";
    button.addEventListener("click", async () => {
      if (!(await confirmAction(question))) return;
      try {
        await api(method, path, body);
        showMessage(done, "ok");
      } catch (error) {
        showMessage(
          (error.status === 403 ? "Refused: " : "Failed: ") + error.message,
          "error",
        );
      }
      refresh();
    });
    return button;
  }

  function pauseButtons(bot) {
    const where = "/api/v1/strategies/" + encodeURIComponent(bot.name);
    const box = el("span");
    if (bot.paused) {
      box.appendChild(
        actionButton("Resume", `Resume ${bot.namespace}/${bot.name}: it trades again.`, "POST",
          where + "/resume" + inNamespace(bot.namespace), undefined, `${bot.name}: resume requested.`),
      );
    } else {
      box.appendChild(
        actionButton("Pause", `Pause ${bot.namespace}/${bot.name}: it opens no new position (orders and ` +
          "positions are kept).", "POST", where + "/pause" + inNamespace(bot.namespace), undefined,
        `${bot.name}: pause requested.`),
      );
    }
    return box;
  }

  function botActions(bot) {
    // Pause or resume the bot, and set or clear the kill switch of the RiskPolicy its account names (if any).
    const box = pauseButtons(bot);
    if (bot.risk_policy) {
      const policy = { name: bot.risk_policy, namespace: bot.namespace, kill_switch: bot.kill_switch };
      box.appendChild(killSwitchButton(policy));
    }
    return box;
  }

  function killSwitchButton(policy) {
    const path = "/api/v1/riskpolicies/" + encodeURIComponent(policy.name) + "/kill-switch" +
      inNamespace(policy.namespace);
    if (policy.kill_switch) {
      return actionButton("Clear kill switch", `Clear the kill switch of RiskPolicy ${policy.namespace}/` +
        `${policy.name}: its bots may trade again.`, "POST", path, { on: false },
      `${policy.name}: kill switch cleared.`);
    }
    return actionButton("Kill switch", `Set the kill switch of RiskPolicy ${policy.namespace}/${policy.name}: ` +
      "every bot it covers cancels its orders, closes its positions and halts.", "POST", path, { on: true },
    `${policy.name}: kill switch set.`);
  }

  // --- the views ---------------------------------------------------------------------------------------------

  function phaseText(bot) {
    // The phase, and why a bot takes no new trade when it does not (Halted, WarmingUp, EntriesRefused...).
    let text = bot.phase + (bot.paused && bot.phase !== "Paused" ? " (paused)" : "");
    const idle = bot.idle_reason;
    if (idle && idle !== "Paused" && idle !== bot.phase) text += ": " + idle;
    return text;
  }

  async function showFleet(seen) {
    const [fleet, policies] = await Promise.all([api("GET", "/api/v1/fleet"), api("GET", "/api/v1/riskpolicies")]);
    if (seen !== generation) return;
    const rows = fleet.body.bots.map((bot) => {
      const link = el("a", bot.name);
      link.href = "#/bot/" + encodeURIComponent(bot.namespace) + "/" + encodeURIComponent(bot.name);
      const tr = row([
        link,
        phaseText(bot),
        money(bot.equity),
        signed(bot.pnl_today),
        percent(bot.drawdown_percent),
        money(bot.exposure),
        bot.open_incidents,
        bot.breaker_level === null ? "–" : bot.breaker_level === 0 ? "ok" : "level " + bot.breaker_level,
        bot.kill_switch ? "ON" : "off",
        botActions(bot),
      ]);
      tr.dataset.bot = bot.namespace + "/" + bot.name;
      if (bot.kill_switch || bot.phase === "Failed" || bot.phase === "Degraded") tr.className = "alarm";
      return tr;
    });
    fill("fleet-table", rows, "No bots yet.");
    fill("policy-table", policies.body.map((policy) => {
      const tr = row([policy.namespace + "/" + policy.name, policy.scope, policy.kill_switch ? "ON" : "off",
        killSwitchButton(policy)]);
      tr.dataset.policy = policy.namespace + "/" + policy.name;
      return tr;
    }), "No risk policies.");
  }

  function drawCurve(points) {
    const svg = $("equity-curve");
    const ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    if (points.length < 2) {
      $("equity-note").textContent = "No equity curve yet: the runtime has not recorded two candles.";
      return;
    }
    const width = 800, height = 240, left = 70, right = 10, top = 10, bottom = 25;
    const times = points.map((p) => p[0]), values = points.map((p) => p[1]);
    const t0 = times[0], t1 = times[times.length - 1];
    let low = Math.min(...values), high = Math.max(...values);
    if (high === low) { high += 1; low -= 1; }
    const x = (t) => left + ((t - t0) / (t1 - t0 || 1)) * (width - left - right);
    const y = (v) => top + (1 - (v - low) / (high - low)) * (height - top - bottom);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.map((p) => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" "));
    line.setAttribute("class", "curve");
    svg.appendChild(line);
    const label = (text, px, py, anchor) => {
      const node = document.createElementNS(ns, "text");
      node.setAttribute("x", px);
      node.setAttribute("y", py);
      node.setAttribute("text-anchor", anchor);
      node.textContent = text;
      svg.appendChild(node);
    };
    label(money(high), left - 5, top + 10, "end");
    label(money(low), left - 5, height - bottom, "end");
    label(when(t0), left, height - 5, "start");
    label(when(t1), width - right, height - 5, "end");
    $("equity-note").textContent = `${points.length} points, ${when(t0)} to ${when(t1)}; ` +
      `last ${money(values[values.length - 1])}.`;
  }

  async function showBot(seen, namespace, name) {
    const where = "/api/v1/strategies/" + encodeURIComponent(name);
    const [bot, activity] = await Promise.all([
      api("GET", where + inNamespace(namespace)),
      api("GET", where + "/activity" + inNamespace(namespace)).catch((error) => error),
    ]);
    if (seen !== generation) return;
    const view = bot.body;
    $("bot-title").textContent = `${view.namespace}/${view.name}`;
    const figures = [
      ["Phase", phaseText(view)],
      ["Equity", money(view.equity)],
      ["Return", percent(view.return_percent)],
      ["Drawdown", percent(view.drawdown_percent)],
      ["Win rate", percent(view.win_rate_percent)],
      ["Closed trades", view.closed_trades === null ? "–" : view.closed_trades],
    ];
    if (!(activity instanceof Error)) {
      const breaker = activity.body.breaker;
      figures.push(["Breaker", breaker.level === 0 ? "ok" : `level ${breaker.level} (${breaker.action})`]);
    }
    $("bot-figures").replaceChildren(...figures.flatMap(([term, value]) => [el("dt", term), el("dd", value)]));
    $("bot-actions").replaceChildren(pauseButtons(view));
    if (activity instanceof Error) {
      drawCurve([]);
      $("equity-note").textContent = "No activity: " + activity.message;
      fill("trades-table", [], "–");
      fill("risk-table", [], "–");
      return;
    }
    drawCurve(activity.body.equity);
    if (activity.headers.get("X-Slsbot-Orders-Source") === "state-file") {
      $("equity-note").textContent += " The runtime is down: read from its state file.";
    }
    fill("trades-table", activity.body.trades.map((t) => row([
      when(t.exit_ts), t.symbol, t.side, t.quantity, money(t.entry_price), money(t.exit_price), signed(t.pnl),
      percent(t.return_pct),
    ])), "No closed trade yet.");
    fill("risk-table", activity.body.risk_decisions.map((d) => row([
      when(d.ts), d.symbol, d.side, d.action, d.rule, d.message,
    ])), "No risk decision yet.");
  }

  async function showExperiments(seen) {
    const answer = await api("GET", "/api/v1/experiments");
    if (seen !== generation) return;
    fill("experiments-table", answer.body.map((e) => {
      const finished = ["Promoted", "RolledBack", "Aborted", "Succeeded", "Failed", "Invalid"].includes(e.phase);
      const step = e.current_step_index === null ? "–"
        : `${e.current_step_index + 1} of ${e.steps.length} (${e.steps[e.current_step_index]} %)`;
      const statistic = e.statistic === null ? "–"
        : `${Number(e.statistic).toFixed(3)} / ${e.threshold === null ? "–" : Number(e.threshold).toFixed(3)}`;
      const variants = e.variants.map((v) => `${v.name}: ${Number(v.allocation_percent).toFixed(1)} %, ` +
        `${v.trades} trades, ${percent(v.return_percent)}`).join("; ");
      const actions = el("span");
      if (e.type === "ab" && !finished) {
        const where = "/api/v1/experiments/" + encodeURIComponent(e.name);
        actions.append(
          actionButton("Promote", `Promote the candidate of ${e.namespace}/${e.name} now, whatever the test says.`,
            "POST", where + "/promote" + inNamespace(e.namespace), undefined, `${e.name}: promotion requested.`),
          actionButton("Roll back", `Roll back ${e.namespace}/${e.name}: the candidate to zero capital, the ` +
            "baseline back to its share.", "POST", where + "/abort" + inNamespace(e.namespace), undefined,
          `${e.name}: rollback requested.`),
        );
      }
      const tr = row([e.namespace + "/" + e.name, e.type, e.phase, step, statistic, e.verdict, variants || "–",
        actions]);
      tr.dataset.experiment = e.namespace + "/" + e.name;
      return tr;
    }), "No experiments.");
  }

  async function showAudit(seen) {
    const answer = await api("GET", "/api/v1/audit?limit=50");
    if (seen !== generation) return;
    fill("audit-table", answer.body.map((a) => row([
      String(a.at).slice(0, 19).replace("T", " "), a.actor, a.action, a.target, a.result,
    ])), "Nothing audited yet.");
  }

  // --- routing and the live updates ----------------------------------------------------------------------------

  const VIEWS = ["fleet-view", "bot-view", "experiments-view", "audit-view"];

  function route() {
    const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    if (parts[0] === "bot" && parts.length === 3) {
      return { view: "bot-view", load: (seen) => showBot(seen, parts[1], parts[2]) };
    }
    if (parts[0] === "experiments") return { view: "experiments-view", load: showExperiments };
    if (parts[0] === "audit") return { view: "audit-view", load: showAudit };
    return { view: "fleet-view", load: showFleet };
  }

  async function refresh() {
    clearTimeout(timer);
    if (!sessionStorage.getItem(TOKEN_KEY)) return signedOut();
    if (document.hidden) return; // a tab no one looks at asks nothing; it looks again when shown
    const current = route();
    for (const id of VIEWS) $(id).hidden = id !== current.view;
    const seen = generation;
    try {
      await current.load(seen);
      failures = 0;
      $("updated").textContent = "Updated " + new Date().toLocaleTimeString() + " (live)";
    } catch (error) {
      if (error.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        showMessage("The token was refused: " + error.message, "error");
        return signedOut();
      }
      failures += 1;
      $("updated").textContent = "Could not update (" + error.message + "); trying again.";
    }
    const wait = Math.min(POLL_MS * 2 ** failures, MAX_BACKOFF_MS);
    if (seen === generation) timer = setTimeout(refresh, wait);
  }

  function signedOut() {
    clearTimeout(timer);
    $("nav").hidden = true;
    for (const id of VIEWS) $(id).hidden = true;
    $("sign-in").hidden = false;
    $("updated").textContent = "";
  }

  function signedIn() {
    $("sign-in").hidden = true;
    $("nav").hidden = false;
    generation += 1;
    refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      $("token").value = "";
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      showMessage("");
      signedIn();
    });
    $("sign-out").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      showMessage("");
      signedOut();
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && sessionStorage.getItem(TOKEN_KEY)) refresh();
    });
    window.addEventListener("hashchange", () => {
      generation += 1;
      showMessage("");
      refresh();
    });
    if (sessionStorage.getItem(TOKEN_KEY)) signedIn();
    else signedOut();
  });
})();
