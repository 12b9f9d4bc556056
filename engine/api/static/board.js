// Tailor menu board: polls the store's board and redraws it without a reload.
// Every piece of data goes in through textContent or setAttribute, never as HTML.
"use strict";

(() => {
  const board = document.getElementById("board");
  const cfg = board.dataset;
  const everyMs = Math.max(500, Number(cfg.everyMs) || 3000);
  const tileCount = Math.max(1, Number(cfg.tiles) || 6);
  const peakQueue = Number(cfg.peakQueue) || 5;
  const hotAt = Number(cfg.hotAt);
  const coldAt = Number(cfg.coldAt);
  const field = (name) => board.querySelector(`[data-field="${name}"]`);
  // A screen's key (scope store-device:<store>) comes in the URL's fragment, /board/s-1#key=...:
  // a fragment is never sent to a server, so the key stays out of requests' URLs and logs.
  const deviceKey = new URLSearchParams(location.hash.slice(1)).get("key");
  const headers = { Accept: "application/json" };
  if (deviceKey) headers.Authorization = `Bearer ${deviceKey}`;

  const REASONS = {
    trending_here: "Trending here",
    hot_weather: "Cool down",
    cold_weather: "Warm up",
    breakfast_time: "Breakfast",
    quick_at_peak: "Quick",
    you_often_buy: "Your favourite",
    exploring: "Try something new",
    good_value: "Good value",
  };
  const DAYPARTS = {
    breakfast: "Breakfast",
    lunch: "Lunch",
    afternoon: "Afternoon",
    dinner: "Dinner",
    late: "Late night",
  };
  const WEATHER_ICONS = [
    [/sun|clear|hot|heat/, "\u2600"],
    [/snow|freez|ice|sleet|cold/, "\u2744"],
    [/rain|drizzle|shower|storm|thunder/, "\u2602"],
    [/cloud|overcast|fog|mist|haze/, "\u2601"],
  ];
  const HOT_WEATHER = new Set(["hot", "heatwave"]);
  const COLD_WEATHER = new Set(["snow", "cold", "freezing"]);

  // Line icons on a 64x64 grid, drawn in the tile's category colour.
  const CUP = "M12 26h34v12a14 14 0 0 1-14 14h-6a14 14 0 0 1-14-14z";
  const ICONS = {
    hot_drinks: [CUP, "M46 30h4a6 6 0 0 1 0 12h-4", "M22 6c-3 4 3 8 0 12M32 6c-3 4 3 8 0 12"],
    cold_drinks: ["M16 22h32l-4 36H20z", "M12 22h40", "M34 22l6-16h8", "M19 36h26"],
    breakfast: [
      "M10 36c0-12 10-20 20-18 8-8 24-2 24 10 6 8 0 22-12 22H22c-8 0-12-6-12-14z",
      "M34 26a7 7 0 1 1 0 14a7 7 0 1 1 0-14z",
    ],
    burgers: [
      "M10 28a22 16 0 0 1 44 0z",
      "M8 36c6-4 10 4 16 0s10 4 16 0 10 4 16 0",
      "M10 44h44v4a6 6 0 0 1-6 6H16a6 6 0 0 1-6-6z",
    ],
    chicken: [
      "M28 36c-8-8-6-24 8-28 12-3 22 6 20 18-2 12-16 18-28 10z",
      "M28 36L17 47",
      "M17 47a4.5 4.5 0 1 0-6 5a4.5 4.5 0 1 0 6-5z",
    ],
    salads: [
      "M8 32h48a24 22 0 0 1-48 0z",
      "M22 32c-2-8 2-16 10-20M32 32c0-8 6-14 14-14M26 32c-6-4-10-10-10-16",
    ],
    sides: [
      "M16 28h32l-5 30H21z",
      "M22 28l-3-18M28 28l-1-20M34 28l1-22M40 28l3-18",
    ],
    desserts: ["M20 32l12 26 12-26", "M18 32a14 14 0 1 1 28 0z", "M26 40h12"],
    other: ["M32 10a22 22 0 1 1 0 44a22 22 0 1 1 0-44z", "M32 20a12 12 0 1 1 0 24a12 12 0 1 1 0-24z"],
  };

  let money;
  try {
    money = new Intl.NumberFormat(undefined, { style: "currency", currency: cfg.currency });
  } catch (_) {
    money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function icon(category) {
    const ns = "http://www.w3.org/2000/svg";  // a namespace name, not a fetch
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 64 64");
    svg.setAttribute("class", "cat-icon");
    svg.setAttribute("aria-hidden", "true");
    for (const d of ICONS[category] || ICONS.other) {
      const path = document.createElementNS(ns, "path");
      path.setAttribute("d", d);
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", "currentColor");
      path.setAttribute("stroke-width", "4");
      path.setAttribute("stroke-linecap", "round");
      path.setAttribute("stroke-linejoin", "round");
      svg.appendChild(path);
    }
    return svg;
  }

  const words = (s) => String(s).replace(/[_-]+/g, " ").trim();
  const capital = (s) => (s ? s.charAt(0).toUpperCase() + s.slice(1) : s);
  const reasonLabel = (r) => REASONS[r] || capital(words(r));
  const isNumber = (x) => typeof x === "number" && Number.isFinite(x);

  function price(value) {
    return isNumber(value) ? money.format(value) : "";
  }

  function degrees(t) {
    return `${Math.round(t)}\u00a0\u00b0C`.replace("-", "\u2212");
  }

  function lane(queue) {
    if (queue === 0) return "Lane: clear";
    const cars = queue === 1 ? "1 car" : `${queue} cars`;
    return queue >= peakQueue ? `Lane: ${cars} \u2014 quick picks first` : `Lane: ${cars}`;
  }

  function renderHeader(board_, ctx) {
    if (typeof board_.store_name === "string" && board_.store_name) {
      field("store-name").textContent = board_.store_name;
    }
    const daypart = typeof ctx.daypart === "string" ? ctx.daypart : "";
    field("daypart").textContent = DAYPARTS[daypart] || capital(words(daypart)) || "Menu";

    const chip = field("weather-chip");
    const weather = typeof ctx.weather === "string" ? ctx.weather.toLowerCase() : "";
    const t = isNumber(ctx.temperature_c) ? ctx.temperature_c : null;
    field("weather").textContent = capital(words(weather));
    field("temperature").textContent = t === null ? "" : degrees(t);
    const glyph = WEATHER_ICONS.find(([pattern]) => pattern.test(weather));
    field("weather-icon").textContent = glyph ? glyph[1] : "";
    const hot = HOT_WEATHER.has(weather) || (t !== null && t >= hotAt);
    const cold = COLD_WEATHER.has(weather) || (t !== null && t <= coldAt);
    chip.setAttribute("data-feel", hot ? "hot" : cold ? "cold" : "mild");
    chip.hidden = !weather && t === null;

    const laneChip = field("lane");
    const queue = Number.isInteger(ctx.queue_length) ? ctx.queue_length : null;
    laneChip.textContent = queue === null ? "" : lane(queue);
    laneChip.setAttribute("data-peak", String(queue !== null && queue >= peakQueue));
    laneChip.hidden = queue === null;
  }

  function tile(offer, rank) {
    const node = el("article", "tile");
    node.setAttribute("data-offer-id", String(offer.offer_id));
    node.setAttribute("data-rank", String(rank));
    const category = typeof offer.category === "string" ? offer.category : "other";
    node.setAttribute("data-category", category);

    const top = el("div", "top");
    top.append(icon(category), el("span", "category", capital(words(category))));
    top.append(el("span", "rank", rank === 1 ? "Top pick" : ""));

    const badges = el("div", "badges");
    const reasons = Array.isArray(offer.reasons) ? offer.reasons : [];
    for (const reason of [...new Set(reasons.map(String))]) {
      const badge = el("span", "badge", reasonLabel(reason));
      badge.setAttribute("data-reason", reason);
      badges.append(badge);
    }
    const bottom = el("div", "bottom");
    bottom.append(badges, el("div", "price", price(offer.price)));

    node.append(top, el("div", "name", offer.name || words(offer.offer_id)), bottom);
    return node;
  }

  // A lane's board while a loyalty scan there is current: the customer's offers, with a cue
  // that names no one. The answer carries no customer id, and the page shows none.
  function renderPersonal(data) {
    const personal = data.personal === true;
    board.setAttribute("data-personal", String(personal));
    field("personal").hidden = !personal;
    return personal && isNumber(data.remaining_s) ? data.remaining_s * 1000 : null;
  }

  function render(data) {
    const ctx = data && typeof data.context === "object" && data.context ? data.context : {};
    renderHeader(data, ctx);
    const personalMs = renderPersonal(data);
    const offers = Array.isArray(data.offers) ? data.offers.slice(0, tileCount) : [];
    if (String(data.decision_id) !== cfg.decisionId) {
      const tiles = offers.map((offer, i) => tile(offer, i + 1));
      if (!tiles.length) tiles.push(el("div", "placeholder", "Nothing on the menu right now"));
      field("tiles").replaceChildren(...tiles);
      board.setAttribute("data-decision-id", String(data.decision_id));
    }
    return personalMs;
  }

  function setStatus(status, text) {
    board.setAttribute("data-status", status);
    field("status").textContent = text;
  }

  async function poll() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), Math.max(everyMs, 5000));
    let nextMs = everyMs;
    try {
      const response = await fetch(cfg.boardUrl, {
        cache: "no-store",
        headers,
        signal: abort.signal,
      });
      if (response.ok) {
        const personalMs = render(await response.json());
        // Back to the store board as soon as the lane's scan ends, not up to a poll later.
        if (personalMs !== null) nextMs = Math.min(everyMs, Math.max(250, personalMs + 100));
        setStatus("live", "Live");
        field("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
      } else if (response.status === 404) {
        setStatus("waiting", "this store is not on the menu system");
      } else if (response.status === 401 || response.status === 403) {
        setStatus("waiting", "this screen needs its key: /board/<store>#key=...");
      } else {
        setStatus("waiting", "waiting for the kitchen\u2026");
      }
    } catch (_) {
      setStatus("waiting", "waiting for the kitchen\u2026");
    } finally {
      clearTimeout(timer);
      setTimeout(poll, nextMs);
    }
  }

  poll();
})();
