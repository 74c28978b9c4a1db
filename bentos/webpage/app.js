/* The investor page: pick a ticker, a horizon and a language; show the forecast's fan chart,
 * narrative, provenance and the model's track record. Talks to the same origin's public API
 * only. The choice lives in the URL (?ticker=&h=&lang=), so a forecast is a shareable link.
 * An API key, when the server asks for one, is typed by the user and kept in this tab's
 * sessionStorage, never in the URL. */
"use strict";

(function () {
  const KEY_STORE = "finsimples.apiKey";
  const HISTORY_DAYS = 252;
  const TEXT = {
    "pt-BR": {
      title: "FinSimples: previsão", skip: "Ir para a previsão",
      tagline: "Faixas de preço calibradas, não palpites.",
      ticker: "Ação (código)", tickerHint: "Digite para buscar; setas e Enter escolhem.",
      horizon: "Horizonte (dias úteis, 1 a 30)", language: "Idioma", submit: "Ver previsão",
      keyTitle: "Chave de acesso",
      keyHelp: "Este servidor pede uma chave de API. Ela fica só nesta aba (sessionStorage) e some quando a aba é fechada.",
      keyLabel: "Chave de API", keySave: "Usar esta chave",
      tableCaption: "A previsão dia a dia (texto alternativo do gráfico)", colDate: "Data",
      colMedian: "Mediana", trackTitle: "Histórico do modelo", colHorizon: "Horizonte",
      colCoverage: "Acertos da faixa", colCount: "Previsões", colWindow: "Período",
      noteTitle: "Importante",
      note: "Isto é uma faixa estatística do que o preço pode fazer, não uma recomendação de compra ou venda. Em cerca de 1 vez a cada 10 o preço real fica fora da faixa de 90%.",
      apiLink: "A API (OpenAPI)",
      loading: "Calculando a previsão…", ready: (t, h) => `Previsão de ${t} para ${h} dias úteis pronta.`,
      resultTitle: (t, h) => `${t}: próximos ${h} dias úteis`,
      chartDesc: (t, lp, d, lo, hi, mid, last) =>
        `Preço de ${t} no último ano até ${lp} em ${d}; em ${last}, faixa de 90% de ${lo} a ${hi}, mediana ${mid}.`,
      legend: ["Histórico", "Faixa 5–95%", "Faixa 25–75%", "Mediana"],
      model: (v) => `modelo v${v}`, dataUpTo: (d) => `dados até ${d}`,
      fresh: "calculado agora", cache: (a) => `respondido do cache ${a}`,
      fallback: (a) => `resposta de reserva ${a}`, ago: (m) => (m < 1 ? "há menos de 1 min" : m < 120 ? `há ${m} min` : `há ${Math.floor(m / 60)} h`),
      narrator: (n) => (n === "template" ? "texto automático" : `texto por ${n}`),
      stale: "Atenção: esta é uma resposta antiga de reserva, porque a resposta nova não ficou pronta a tempo. Os números podem estar desatualizados.",
      unknown: (t) => `Não conhecemos o código ${t}.`, didYouMean: "Você quis dizer:",
      noSuggestion: "Confira o código na lista.",
      staleTicker: (t, last, asOf, n) => `${t} não tem preços desde ${last}: são ${n} pregões antes dos dados mais recentes (${asOf}). Não fazemos previsão a partir de um preço tão antigo.`,
      tooMany: (s) => `Muitas consultas agora. Tente de novo em ${s} s.`,
      busy: (s) => `O serviço está ocupado e não tinha resposta a tempo. Tente de novo em ${s} s.`,
      keyNeeded: "Este servidor pede uma chave de API: informe-a abaixo.",
      invalid: (m) => `Pedido inválido: ${m}`, failed: "Não foi possível falar com o servidor. Tente de novo.",
      pickTicker: "Escolha uma ação da lista.",
      trackIntro: (n) => `Com que frequência as faixas de ${n}% já servidas contiveram o preço real, por horizonte.`,
      trackBacktest: (n) => `Ainda sem histórico real: cobertura da faixa de ${n}% no teste retroativo (backtest), por horizonte.`,
      trackNone: "Ainda não há histórico do modelo.", days: (h) => `${h} d`,
      window: (a, b) => `${a} a ${b}`, backtest: "backtest",
    },
    en: {
      title: "FinSimples: forecast", skip: "Skip to the forecast",
      tagline: "Calibrated price ranges, not tips.",
      ticker: "Stock (ticker)", tickerHint: "Type to search; arrows and Enter pick.",
      horizon: "Horizon (trading days, 1 to 30)", language: "Language", submit: "Show forecast",
      keyTitle: "Access key",
      keyHelp: "This server asks for an API key. It stays in this tab only (sessionStorage) and is gone when the tab is closed.",
      keyLabel: "API key", keySave: "Use this key",
      tableCaption: "The forecast day by day (text alternative to the chart)", colDate: "Date",
      colMedian: "Median", trackTitle: "The model's track record", colHorizon: "Horizon",
      colCoverage: "Range hit rate", colCount: "Forecasts", colWindow: "Period",
      noteTitle: "Important",
      note: "This is a statistical range of what the price may do, not advice to buy or sell. About 1 time in 10 the real price ends outside the 90% range.",
      apiLink: "The API (OpenAPI)",
      loading: "Computing the forecast…", ready: (t, h) => `Forecast of ${t} over ${h} trading days ready.`,
      resultTitle: (t, h) => `${t}: next ${h} trading days`,
      chartDesc: (t, lp, d, lo, hi, mid, last) =>
        `${t}'s price over the last year up to ${lp} on ${d}; on ${last}, 90% range ${lo} to ${hi}, median ${mid}.`,
      legend: ["History", "5–95% range", "25–75% range", "Median"],
      model: (v) => `model v${v}`, dataUpTo: (d) => `data up to ${d}`,
      fresh: "computed now", cache: (a) => `answered from the cache ${a}`,
      fallback: (a) => `fallback answer ${a}`, ago: (m) => (m < 1 ? "less than 1 min ago" : m < 120 ? `${m} min ago` : `${Math.floor(m / 60)} h ago`),
      narrator: (n) => (n === "template" ? "automatic text" : `text by ${n}`),
      stale: "Warning: this is an older fallback answer, because the new one was not ready in time. The numbers may be out of date.",
      unknown: (t) => `We don't know the ticker ${t}.`, didYouMean: "Did you mean:",
      noSuggestion: "Check the ticker in the list.",
      staleTicker: (t, last, asOf, n) => `${t} has no prices since ${last}: ${n} trading sessions before the newest data (${asOf}). We don't forecast from a price that old.`,
      tooMany: (s) => `Too many requests right now. Try again in ${s} s.`,
      busy: (s) => `The service is busy and had no answer in time. Try again in ${s} s.`,
      keyNeeded: "This server asks for an API key: enter it below.",
      invalid: (m) => `Invalid request: ${m}`, failed: "Could not reach the server. Try again.",
      pickTicker: "Pick a stock from the list.",
      trackIntro: (n) => `How often the served ${n}% ranges contained the real price, per horizon.`,
      trackBacktest: (n) => `No served record yet: the ${n}% range's coverage in the walk-forward backtest, per horizon.`,
      trackNone: "No track record yet.", days: (h) => `${h} d`,
      window: (a, b) => `${a} to ${b}`, backtest: "backtest",
    },
  };

  const $ = (id) => document.getElementById(id);
  const state = { ticker: "", horizon: 5, lang: "pt-BR" };
  let listed = [];  // the tickers of the latest search, in the API's order
  let searchSeq = 0;
  let searching = 0;
  let pending = Promise.resolve();  // the latest search: keys wait for the list they act on
  let model = null;
  let shown = null;  // {answer, history}: redrawn in the other language's number format
  let active = -1;
  let requestSeq = 0;

  const t = () => TEXT[state.lang];

  /* --- the URL ---------------------------------------------------------------------- */
  function readUrl() {
    const q = new URLSearchParams(location.search);
    state.ticker = (q.get("ticker") || "").toUpperCase().slice(0, 12);
    const h = parseInt(q.get("h") || "5", 10);
    state.horizon = Number.isFinite(h) ? Math.min(30, Math.max(1, h)) : 5;
    state.lang = q.get("lang") === "en" ? "en" : "pt-BR";
  }
  function urlFor(ticker, horizon, lang) {
    const q = new URLSearchParams({ ticker, h: String(horizon), lang });
    return `${location.pathname}?${q}`;
  }
  function writeUrl() {
    const next = urlFor(state.ticker, state.horizon, state.lang);
    if (next !== location.pathname + location.search) history.pushState(null, "", next);
  }

  /* --- formatting --------------------------------------------------------------------- */
  function money(value, currency) {
    const opts = { minimumFractionDigits: 2, maximumFractionDigits: 2 };
    if (currency) {
      try {
        return new Intl.NumberFormat(state.lang, { ...opts, style: "currency", currency }).format(value);
      } catch (e) { /* an unknown code: no symbol */ }
    }
    return new Intl.NumberFormat(state.lang, opts).format(value);
  }
  /* API dates are YYYY-MM-DD; shown as dd/mm/yyyy (pt-BR) or yyyy-mm-dd (en), no date maths. */
  function day(iso) {
    const [y, m, d] = String(iso).slice(0, 10).split("-");
    return state.lang === "pt-BR" ? `${d}/${m}/${y}` : `${y}-${m}-${d}`;
  }
  const pct = (v) => new Intl.NumberFormat(state.lang, { style: "percent", maximumFractionDigits: 1 }).format(v);

  /* --- the API ------------------------------------------------------------------------ */
  async function api(path, body) {
    const headers = { Accept: "application/json" };
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers["X-API-Key"] = key;
    const init = { headers };
    if (body !== undefined) {
      init.method = "POST";
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    const retry = response.headers.get("Retry-After");
    return { status: response.status, data: data || {}, retry: retry || (data && data.retry_after) || 1 };
  }

  /* --- static text -------------------------------------------------------------------- */
  function applyLanguage() {
    document.documentElement.lang = state.lang;
    document.title = t().title;
    for (const node of document.querySelectorAll("[data-i18n]")) {
      const value = t()[node.dataset.i18n];
      if (typeof value === "string") node.textContent = value;
    }
    $("lang").value = state.lang;
    renderTrack();
    if (shown) renderResult(shown.answer, shown.history);
  }

  /* --- search as you type (ARIA combobox) ------------------------------------------- */
  /* The API searches (GET /v1/tickers?q=): tickers first, then names, accents ignored; the
     page never holds the whole list, which at 2,000 tickers would be ~0.4 MB. */
  function searchPath(text) {
    const params = new URLSearchParams({ limit: "8", forecastable: "true" });
    const q = text.trim().slice(0, 40);
    if (q) params.set("q", q);
    return `/v1/tickers?${params}`;
  }
  function search(text) {
    const seq = ++searchSeq;
    searching += 1;
    pending = api(searchPath(text))
      .then((answer) => {
        if (seq !== searchSeq) return answer.status;  // a newer search was typed meanwhile
        listed = answer.status === 200 ? answer.data.tickers : [];
        return answer.status;
      })
      .catch(() => { if (seq === searchSeq) listed = []; return 0; })
      .finally(() => { searching -= 1; });
    return pending;
  }
  function onTickerInput() {
    const typed = $("ticker").value;
    search(typed).then(() => {
      // Only while the investor is still typing that text: a late answer opens nothing.
      if ($("ticker").value === typed && document.activeElement === $("ticker")) openList(listed);
    });
  }
  function openList(items) {
    const list = $("ticker-list");
    list.replaceChildren(...items.map((item, i) => {
      const li = document.createElement("li");
      li.id = `ticker-opt-${i}`;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.dataset.ticker = item.ticker;
      li.textContent = item.ticker;
      if (item.name) li.title = item.name;
      li.addEventListener("mousedown", (ev) => { ev.preventDefault(); choose(item.ticker); });
      return li;
    }));
    active = -1;
    list.hidden = items.length === 0;
    $("ticker").setAttribute("aria-expanded", String(!list.hidden));
    $("ticker").removeAttribute("aria-activedescendant");
  }
  function closeList() {
    $("ticker-list").hidden = true;
    $("ticker").setAttribute("aria-expanded", "false");
    $("ticker").removeAttribute("aria-activedescendant");
    active = -1;
  }
  function highlight(index) {
    const options = $("ticker-list").querySelectorAll("[role=option]");
    if (!options.length) return;
    active = (index + options.length) % options.length;
    options.forEach((o, i) => o.setAttribute("aria-selected", String(i === active)));
    $("ticker").setAttribute("aria-activedescendant", options[active].id);
    options[active].scrollIntoView({ block: "nearest" });
  }
  function choose(name) {
    $("ticker").value = name;
    closeList();
  }
  const isOpen = () => !$("ticker-list").hidden;
  function pickActive() {
    choose($("ticker-list").querySelectorAll("[role=option]")[active].dataset.ticker);
  }
  /* Keys act on the list of what was typed: while its search is on the way, they wait for it
     (in the order pressed), so a fast typist's ArrowDown + Enter picks from the right list. */
  function onTickerKey(ev) {
    if (ev.key === "ArrowDown") {
      ev.preventDefault();
      pending.then(() => { if (!isOpen()) openList(listed); highlight(active + 1); });
    } else if (ev.key === "ArrowUp") {
      ev.preventDefault();
      pending.then(() => { if (isOpen()) highlight(active - 1); });
    } else if (ev.key === "Escape") {
      closeList();
    } else if (ev.key === "Enter" && (searching > 0 || (isOpen() && active >= 0))) {
      ev.preventDefault();
      pending.then(() => { if (isOpen() && active >= 0) pickActive(); else submit(); });
    }
  }

  /* --- showing results ---------------------------------------------------------------- */
  function showError(message, suggestions) {
    const box = $("error");
    box.replaceChildren(document.createTextNode(message));
    if (suggestions) {
      const p = document.createElement("p");
      if (suggestions.length) {
        p.append(t().didYouMean + " ");
        for (const name of suggestions) {
          const a = document.createElement("a");
          a.href = urlFor(name, state.horizon, state.lang);
          a.textContent = name;
          a.addEventListener("click", (ev) => { ev.preventDefault(); $("ticker").value = name; submit(); });
          p.append(a, " ");
        }
      } else {
        p.append(t().noSuggestion);
      }
      box.append(p);
    }
    box.hidden = false;
    $("result").hidden = true;  // never a blank or outdated chart beside an error
    shown = null;
    $("status").textContent = "";
  }

  function quantileKeys(answer) {
    const names = Object.keys(answer.path[0].prices);
    const level = (k) => parseFloat(k.slice(1));
    const sorted = names.slice().sort((a, b) => level(a) - level(b));
    const find = (v) => names.find((k) => Math.abs(level(k) - v) < 1e-9);
    const tail = (1 - answer.interval) / 2;
    return {
      lo: find(tail) || sorted[0], hi: find(1 - tail) || sorted[sorted.length - 1],
      q25: find(0.25), q75: find(0.75), mid: find(0.5) || sorted[Math.floor(sorted.length / 2)],
    };
  }

  function renderResult(answer, history) {
    const tx = t(), cur = answer.currency || null, keys = quantileKeys(answer);
    const fmt = (v) => money(v, cur);
    const last = answer.path[answer.path.length - 1];
    $("result-title").textContent = tx.resultTitle(answer.ticker, answer.horizon_days);
    FanChart.draw($("chart"), history, answer, {
      keys, format: fmt, date: day, title: tx.resultTitle(answer.ticker, answer.horizon_days),
      desc: tx.chartDesc(answer.ticker, fmt(answer.last_price), day(answer.as_of),
        fmt(last.prices[keys.lo]), fmt(last.prices[keys.hi]), fmt(last.prices[keys.mid]), day(last.date)),
    });
    const legend = $("legend");
    legend.replaceChildren();
    const colours = ["#333333", "#cfe0f1", "#8fb6dc", "#0b4f8a"];
    tx.legend.forEach((label, i) => {
      if (i === 2 && !(keys.q25 && keys.q75)) return;
      const s = document.createElement("span");
      s.className = "swatch";
      s.setAttribute("aria-hidden", "true");
      s.dataset.colour = colours[i];
      legend.append(s, label);
    });
    for (const s of legend.querySelectorAll(".swatch")) s.style.background = s.dataset.colour;
    $("narrative").textContent = answer.narrative;
    $("provenance").textContent = provenanceText(answer.provenance);
    $("stale").hidden = !answer.provenance.stale;
    $("stale").textContent = tx.stale;
    const rows = answer.path.map((p) => {
      const tr = document.createElement("tr");
      const cells = [day(p.date), keys.lo, keys.q25, keys.mid, keys.q75, keys.hi];
      cells.forEach((c, i) => {
        const cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) { cell.scope = "row"; cell.textContent = c; }
        else cell.textContent = c ? fmt(p.prices[c]) : "–";
        tr.append(cell);
      });
      return tr;
    });
    $("path-table").tBodies[0].replaceChildren(...rows);
    $("error").hidden = true;
    $("result").hidden = false;
    shown = { answer, history };
  }

  function provenanceText(p) {
    const tx = t();
    const minutes = (iso) => Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 60000));
    let source = tx.fresh;
    if (p.source === "cache") source = tx.cache(tx.ago(minutes(p.cached_at || p.generated_at)));
    if (p.source === "fallback") source = tx.fallback(tx.ago(minutes(p.cached_at || p.generated_at)));
    const parts = [tx.model(p.model_version), tx.dataUpTo(day(p.data_watermark)), source, tx.narrator(p.narrator)];
    const text = parts.join(", ");
    return text.charAt(0).toUpperCase() + text.slice(1) + ".";
  }

  function renderTrack() {
    const tx = t(), table = $("track-table"), intro = $("track-intro");
    if (!model) { table.hidden = true; intro.textContent = ""; return; }
    const level = Math.round(model.interval * 100);
    let rows = [];
    if (model.track_record && model.track_record.length) {
      intro.textContent = tx.trackIntro(level);
      rows = model.track_record.map((r) => [tx.days(r.horizon), pct(r.coverage), String(r.n),
        r.window_start ? tx.window(day(r.window_start), day(r.as_of)) : day(r.as_of)]);
    } else if (model.coverage && model.coverage.length) {
      intro.textContent = tx.trackBacktest(level);
      rows = model.coverage.filter((r) => r.coverage !== null)
        .map((r) => [tx.days(r.horizon), pct(r.coverage), "–", tx.backtest]);
    } else {
      intro.textContent = tx.trackNone;
    }
    table.tBodies[0].replaceChildren(...rows.map((cells) => {
      const tr = document.createElement("tr");
      cells.forEach((c, i) => {
        const cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) cell.scope = "row";
        cell.textContent = c;
        tr.append(cell);
      });
      return tr;
    }));
    table.hidden = rows.length === 0;
  }

  /* --- the flow ----------------------------------------------------------------------- */
  function explain(status, data, retry) {
    const tx = t();
    if (status === 404 && data.error === "unknown_ticker") return showError(tx.unknown(state.ticker), data.suggestions || []);
    if (status === 409 && data.error === "stale_ticker") return showError(tx.staleTicker(state.ticker, day(data.last_date), day(data.lake_as_of), data.sessions_behind));
    if (status === 429) return showError(tx.tooMany(Math.ceil(Number(retry) || 1)));
    if (status === 503) return showError(tx.busy(Math.ceil(Number(retry) || 1)));
    if (status === 401) { $("key-box").hidden = false; return showError(tx.keyNeeded); }
    if (status === 404 || status === 422) return showError(tx.invalid(data.message || status));
    return showError(tx.failed);
  }

  async function load() {
    if (!state.ticker) return;
    const seq = ++requestSeq;
    $("status").textContent = t().loading;
    $("chart").setAttribute("aria-busy", "true");
    try {
      const body = { ticker: state.ticker, horizon_days: state.horizon, locale: state.lang };
      const [forecast, history] = await Promise.all([
        api("/v1/forecast", body),
        api(`/v1/history?ticker=${encodeURIComponent(state.ticker)}&days=${HISTORY_DAYS}`),
      ]);
      if (seq !== requestSeq) return;  // a newer choice was made meanwhile
      if (forecast.status !== 200) return explain(forecast.status, forecast.data, forecast.retry);
      const points = history.status === 200 ? history.data.points : [];
      renderResult(forecast.data, points);
      $("status").textContent = t().ready(forecast.data.ticker, forecast.data.horizon_days);
      performance.mark("forecast-rendered");
    } catch (e) {
      if (seq === requestSeq) showError(t().failed);
    } finally {
      $("chart").removeAttribute("aria-busy");
    }
  }

  async function loadModel() {
    const answer = await api("/v1/model");
    if (answer.status === 200) { model = answer.data; renderTrack(); }
  }

  function loadTickers() {
    return search("");  // the first tickers, shown by ArrowDown before anything is typed
  }

  function submit() {
    const typed = $("ticker").value.trim().toUpperCase();
    if (!typed) { showError(t().pickTicker); $("ticker").focus(); return; }
    closeList();
    const h = parseInt($("horizon").value, 10);
    state.ticker = typed;
    state.horizon = Number.isFinite(h) ? Math.min(30, Math.max(1, h)) : 5;
    $("horizon").value = String(state.horizon);
    writeUrl();
    load();
  }

  function syncInputs() {
    $("ticker").value = state.ticker;
    $("horizon").value = String(state.horizon);
    $("lang").value = state.lang;
  }

  async function start() {
    readUrl();
    syncInputs();
    applyLanguage();
    $("pick").addEventListener("submit", (ev) => { ev.preventDefault(); submit(); });
    $("ticker").addEventListener("input", onTickerInput);
    $("ticker").addEventListener("keydown", onTickerKey);
    $("ticker").addEventListener("blur", () => setTimeout(closeList, 100));
    $("lang").addEventListener("change", () => {
      state.lang = $("lang").value === "en" ? "en" : "pt-BR";
      applyLanguage();
      if (state.ticker && shown) { writeUrl(); load(); } else { writeUrl(); }
    });
    $("key-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const key = $("api-key").value.trim();
      if (key) sessionStorage.setItem(KEY_STORE, key); else sessionStorage.removeItem(KEY_STORE);
      $("api-key").value = "";
      $("key-box").hidden = true;
      $("error").hidden = true;
      boot();
    });
    window.addEventListener("popstate", () => { readUrl(); syncInputs(); applyLanguage(); load(); });
    boot();
  }

  async function boot() {
    try {
      const [status] = await Promise.all([loadTickers(), state.ticker ? load() : null, loadModel()]);
      if (status === 401) { $("key-box").hidden = false; showError(t().keyNeeded); }
    } catch (e) {
      showError(t().failed);
    }
  }

  start();
})();
