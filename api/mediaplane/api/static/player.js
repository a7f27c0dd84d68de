// The mediaplane player page: plays the signed links of its JSON config with the vendored
// hls.js, dash.js or Shaka Player, with its own controls: play, a seek bar that previews
// the storyboard's tiles, rendition and caption choice. Images are shown in a <picture>.
// No framework and no build step: the page must work as served, from any origin.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("mp-config").textContent);
  const root = document.getElementById("mp-player");
  const message = document.getElementById("mp-message");

  function el(tag, attributes, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function clock(seconds) {
    if (!Number.isFinite(seconds) || seconds < 0) seconds = 0;
    const whole = Math.floor(seconds);
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const s = String(whole % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function setState(state) {
    root.dataset.state = state;
  }

  function fail(text) {
    setState("error");
    message.textContent = text;
    message.hidden = false;
  }

  // --- images -----------------------------------------------------------------------------

  function showImage() {
    const images = config.images || [];
    if (!images.length) {
      fail("This image has no sizes to show yet.");
      return;
    }
    const webp = images.filter((i) => i.type === "image/webp");
    const fallback = images.find((i) => i.type === "image/jpeg") || images[images.length - 1];
    const picture = el("picture", {}, [
      ...(webp.length ? [el("source", {
        type: "image/webp",
        srcset: webp.map((i) => `${i.url} ${i.width}w`).join(", "),
        sizes: "(max-width: 1280px) 100vw, 1280px",
      })] : []),
      el("img", {
        id: "mp-image", class: "mp-image", src: fallback.url, alt: config.title,
        width: fallback.width, height: fallback.height,
      }),
    ]);
    root.append(picture);
    const img = picture.querySelector("img");
    img.addEventListener("load", () => setState("ready"));
    img.addEventListener("error", () => fail("The image could not be loaded; the link may have expired."));
  }

  // --- the playback engines ------------------------------------------------------------------
  // Each one loads its manifest into the <video> and tells the controls which renditions
  // and caption tracks exist (ui.qualities, ui.captions); the controls call it back.

  function httpStatusMessage(status) {
    if (status === 403) return "The link has expired or is not valid any more (HTTP 403).";
    if (status === 404) return "The media was not found (HTTP 404).";
    if (status === 409) return "The media is still being processed (HTTP 409).";
    return `The server answered HTTP ${status}.`;
  }

  function hlsEngine(video, ui) {
    if (!(window.Hls && window.Hls.isSupported())) {
      if (video.canPlayType("application/vnd.apple.mpegurl")) {
        video.src = config.hls; // Safari's own HLS: its native controls pick the rest
        return { setQuality() {}, setCaption() {} };
      }
      throw new Error("this browser cannot play HLS");
    }
    const Hls = window.Hls;
    const hls = new Hls({ subtitleDisplay: true });
    window.mediaplane.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      ui.qualities(hls.levels.map((level, index) => ({
        id: String(index),
        label: level.height ? `${level.height}p` : `${Math.round(level.bitrate / 1000)} kb/s`,
      })));
    });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, (_, data) => {
      ui.captions(data.subtitleTracks.map((track, index) => ({
        id: String(index), label: track.name || track.lang, lang: track.lang,
      })), hls.subtitleTrack >= 0 ? String(hls.subtitleTrack) : "off");
    });
    hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, (_, data) => {
      ui.captionShown(data.id >= 0 ? String(data.id) : "off");
    });
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal) return;
      const status = data.response && data.response.code;
      fail(status ? httpStatusMessage(status) : `Playback failed (${data.details}).`);
    });
    hls.loadSource(config.hls);
    hls.attachMedia(video);
    return {
      setQuality(id) {
        hls.currentLevel = id === "auto" ? -1 : Number(id);
      },
      setCaption(id) {
        hls.subtitleDisplay = id !== "off";
        hls.subtitleTrack = id === "off" ? -1 : Number(id);
      },
    };
  }

  function dashEngine(video, ui) {
    const dashjs = window.dashjs;
    const player = dashjs.MediaPlayer().create();
    window.mediaplane.dash = player;
    player.updateSettings({ streaming: { text: { defaultEnabled: true } } });
    const events = dashjs.MediaPlayer.events;
    player.on(events.STREAM_INITIALIZED, () => {
      ui.qualities(player.getRepresentationsByType("video").map((rep) => ({
        id: String(rep.id), label: rep.height ? `${rep.height}p` : String(rep.id),
      })));
      const texts = player.getTracksFor("text");
      ui.captions(texts.map((track, index) => ({
        id: String(index),
        label: (track.labels && track.labels[0] && track.labels[0].text) || track.lang,
        lang: track.lang,
      })), texts.length && player.getCurrentTextTrackIndex() >= 0
        ? String(player.getCurrentTextTrackIndex()) : "off");
    });
    player.on(events.ERROR, (event) => {
      const error = event.error || {};
      const status = error.data && error.data.response && error.data.response.status;
      fail(status ? httpStatusMessage(status) : `Playback failed (${error.message || error.code}).`);
    });
    player.initialize(video, config.dash, false);
    return {
      setQuality(id) {
        const auto = id === "auto";
        player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: auto } } } });
        if (!auto) player.setRepresentationForTypeById("video", id, true);
      },
      setCaption(id) {
        player.enableText(id !== "off");
        if (id !== "off") player.setTextTrack(Number(id));
      },
    };
  }

  function shakaEngine(video, ui) {
    const shaka = window.shaka;
    shaka.polyfill.installAll();
    if (!shaka.Player.isBrowserSupported()) throw new Error("this browser cannot run Shaka Player");
    const player = new shaka.Player();
    window.mediaplane.shaka = player;
    player.addEventListener("error", (event) => {
      const detail = event.detail || {};
      const status = detail.code === shaka.util.Error.Code.BAD_HTTP_STATUS && detail.data[1];
      fail(status ? httpStatusMessage(status) : `Playback failed (Shaka error ${detail.code}).`);
    });
    const heights = new Map();
    (async () => {
      await player.attach(video);
      await player.load(config.dash);
      for (const track of player.getVariantTracks()) {
        if (track.height && !heights.has(track.height)) heights.set(track.height, track);
      }
      ui.qualities([...heights.values()].sort((a, b) => b.height - a.height)
        .map((track) => ({ id: String(track.height), label: `${track.height}p` })));
      const texts = player.getTextTracks();
      if (texts.length) player.selectTextTrack(texts[0]); // Shaka 5: selected means shown
      ui.captions(texts.map((track) => ({
        id: String(track.id), label: track.label || track.language, lang: track.language,
      })), texts.length ? String(texts[0].id) : "off");
    })().catch((error) => {
      const status = error && error.code === shaka.util.Error.Code.BAD_HTTP_STATUS && error.data[1];
      fail(status ? httpStatusMessage(status) : `Playback failed (${error && (error.code || error.message)}).`);
    });
    return {
      setQuality(id) {
        player.configure({ abr: { enabled: id === "auto" } });
        if (id !== "auto") {
          const wanted = heights.get(Number(id));
          const best = player.getVariantTracks().filter((t) => t.height === Number(id))
            .sort((a, b) => b.bandwidth - a.bandwidth)[0] || wanted;
          if (best) player.selectVariantTrack(best, true);
        }
      },
      setCaption(id) {
        const track = player.getTextTracks().find((t) => String(t.id) === id);
        player.selectTextTrack(id === "off" ? null : track || null);
      },
    };
  }

  // --- seek previews -------------------------------------------------------------------------

  function parseTime(text) {
    const parts = text.trim().split(":").map(Number);
    return parts.reduce((total, part) => total * 60 + part, 0);
  }

  function parseStoryboard(text) {
    const cues = [];
    for (const block of text.replace(/\r/g, "").split(/\n\n+/)) {
      const lines = block.split("\n");
      const timing = lines.findIndex((line) => line.includes("-->"));
      if (timing < 0 || !lines[timing + 1]) continue;
      const [start, end] = lines[timing].split("-->").map((t) => parseTime(t.split(" ").filter(Boolean)[0] || t));
      const target = lines[timing + 1].trim();
      const hash = target.lastIndexOf("#xywh=");
      if (hash < 0) continue;
      const [x, y, w, h] = target.slice(hash + 6).split(",").map(Number);
      cues.push({ start, end, url: target.slice(0, hash), x, y, w, h });
    }
    return cues;
  }

  async function loadStoryboard() {
    if (!config.storyboard) return [];
    const response = await fetch(config.storyboard);
    if (!response.ok) return [];
    const cues = parseStoryboard(await response.text());
    for (const url of new Set(cues.map((c) => c.url))) new Image().src = url; // warm the cache
    return cues;
  }

  // --- the controls ----------------------------------------------------------------------------

  function showPlayer() {
    const audio = config.kind === "audio";
    const video = el("video", {
      id: "mp-video", class: audio ? "mp-video mp-audio" : "mp-video", playsinline: true,
      preload: "metadata", poster: config.poster || null,
    });
    const play = el("button", { id: "mp-play", class: "mp-button", type: "button", text: "Play" });
    const seek = el("input", {
      id: "mp-seek", class: "mp-seek", type: "range", min: 0, max: 1000, step: 1, value: 0,
      "aria-label": "Seek",
    });
    const previewImage = el("div", { class: "mp-preview-image" });
    const previewTime = el("span", { class: "mp-preview-time" });
    const preview = el("div", { id: "mp-preview", class: "mp-preview", hidden: true },
      [previewImage, previewTime]);
    const seekBox = el("div", { class: "mp-seek-box" }, [seek, preview]);
    const time = el("span", { id: "mp-time", class: "mp-time", text: "0:00 / 0:00" });
    const quality = el("select", { id: "mp-quality", class: "mp-select", "aria-label": "Quality" },
      [el("option", { value: "auto", text: "Auto" })]);
    const captions = el("select", { id: "mp-captions", class: "mp-select", "aria-label": "Captions" },
      [el("option", { value: "off", text: "Captions off" })]);
    const mute = el("button", { id: "mp-mute", class: "mp-button", type: "button", text: "Mute" });
    const engineName = { hls: "hls.js", dash: "dash.js", shaka: "Shaka Player" }[config.engine];
    const badge = el("span", { class: "mp-engine", text: engineName });
    const controls = el("div", { class: "mp-controls" },
      [play, seekBox, time, quality, captions, mute, badge]);
    root.append(el("div", { class: "mp-stage" }, [video]), controls);
    window.mediaplane = { video, config };

    const duration = () => (Number.isFinite(video.duration) && video.duration > 0
      ? video.duration : config.duration || 0);
    let dragging = false;
    let storyboard = [];

    const ui = {
      qualities(list) {
        quality.replaceChildren(el("option", { value: "auto", text: "Auto" }),
          ...list.map((q) => el("option", { value: q.id, text: q.label })));
      },
      captions(list, selected) {
        captions.replaceChildren(el("option", { value: "off", text: "Captions off" }),
          ...list.map((c) => el("option", { value: c.id, text: c.label, lang: c.lang || null })));
        captions.value = selected || "off";
      },
      captionShown(id) {
        if ([...captions.options].some((o) => o.value === id)) captions.value = id;
      },
    };

    let engine;
    try {
      engine = { hls: hlsEngine, dash: dashEngine, shaka: shakaEngine }[config.engine](video, ui);
    } catch (error) {
      fail(`This browser cannot play this media: ${error.message}.`);
      return;
    }
    setState("loading");

    play.addEventListener("click", () => {
      if (video.paused || video.ended) {
        video.play().catch((error) => fail(`Playback could not start: ${error.message}`));
      } else {
        video.pause();
      }
    });
    mute.addEventListener("click", () => {
      video.muted = !video.muted;
      mute.textContent = video.muted ? "Unmute" : "Mute";
    });
    quality.addEventListener("change", () => engine.setQuality(quality.value));
    captions.addEventListener("change", () => engine.setCaption(captions.value));
    video.addEventListener("loadedmetadata", () => {
      time.textContent = `${clock(video.currentTime)} / ${clock(duration())}`;
      setState("ready");
    });
    video.addEventListener("play", () => { play.textContent = "Pause"; setState("playing"); });
    video.addEventListener("pause", () => { play.textContent = "Play"; });
    video.addEventListener("ended", () => { play.textContent = "Play"; setState("ended"); });
    video.addEventListener("timeupdate", () => {
      time.textContent = `${clock(video.currentTime)} / ${clock(duration())}`;
      if (!dragging && duration()) seek.value = String(Math.round((video.currentTime / duration()) * 1000));
    });
    seek.addEventListener("pointerdown", () => { dragging = true; });
    seek.addEventListener("pointerup", () => { dragging = false; });
    seek.addEventListener("input", () => {
      if (duration()) video.currentTime = (Number(seek.value) / 1000) * duration();
    });

    function showPreview(fraction) {
      const at = Math.min(Math.max(fraction, 0), 1) * duration();
      const cue = storyboard.find((c) => at >= c.start && at < c.end) || storyboard[storyboard.length - 1];
      if (!cue) return;
      previewImage.style.width = `${cue.w}px`;
      previewImage.style.height = `${cue.h}px`;
      previewImage.style.backgroundImage = `url("${cue.url}")`;
      previewImage.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
      previewTime.textContent = clock(at);
      const box = seek.getBoundingClientRect();
      const left = Math.min(Math.max(fraction * box.width - cue.w / 2, 0), Math.max(box.width - cue.w, 0));
      preview.style.left = `${left}px`;
      preview.dataset.start = String(cue.start);
      preview.hidden = false;
    }
    seek.addEventListener("pointermove", (event) => {
      const box = seek.getBoundingClientRect();
      showPreview((event.clientX - box.left) / box.width);
    });
    seek.addEventListener("pointerleave", () => { preview.hidden = true; });
    loadStoryboard().then((cues) => {
      storyboard = cues;
      if (cues.length) root.dataset.storyboard = String(cues.length);
    }).catch(() => { /* seek previews are optional */ });
  }

  if (config.kind === "image") showImage();
  else showPlayer();
})();
