// What a web developer writes: load a signed HLS or DASH link with hls.js, dash.js or Shaka
// Player into a <video>, switch renditions while it plays, turn the captions on, and report
// what happened. The tests call run() and assert on its report.
"use strict";

function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

function log(line) { document.getElementById("log").textContent += line + "\n"; }

// --- one adapter per player: load, renditions, switch, report an error ---------------------

function hlsAdapter(video, url, report) {
  const hls = new Hls({ subtitleDisplay: true });
  let levels = [];
  hls.on(Hls.Events.MANIFEST_PARSED, () => { levels = hls.levels.map((l) => l.height); });
  hls.on(Hls.Events.ERROR, (_, data) => {
    if (data.fatal) report({ fatal: data.details, status: data.response && data.response.code });
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  return {
    renditions: () => levels,
    // By height, so the order of levels does not matter.
    select(height) { hls.currentLevel = hls.levels.findIndex((l) => l.height === height); },
    textTracks: () => hls.subtitleTracks.map((t) => t.lang),
  };
}

function dashAdapter(video, url, report) {
  const player = dashjs.MediaPlayer().create();
  player.updateSettings({ streaming: { text: { defaultEnabled: true },
                                       abr: { autoSwitchBitrate: { video: false } } } });
  player.on(dashjs.MediaPlayer.events.ERROR, (event) => {
    const error = event.error || {};
    const response = error.data && error.data.response;
    report({ fatal: String(error.message || error.code), status: response && response.status });
  });
  player.initialize(video, url, false);
  const reps = () => player.getRepresentationsByType("video") || [];
  return {
    renditions: () => reps().map((r) => r.height),
    select(height) {
      const rep = reps().find((r) => r.height === height);
      if (rep) player.setRepresentationForTypeById("video", rep.id, true);
    },
    textTracks: () => (player.getTracksFor("text") || []).map((t) => t.lang),
  };
}

function shakaAdapter(video, url, report) {
  shaka.polyfill.installAll();
  const player = new shaka.Player();
  player.configure({ abr: { enabled: false } });
  const fail = (error) => report({ fatal: `shaka ${error.code || ""} ${error.message || ""}`,
    status: error.code === shaka.util.Error.Code.BAD_HTTP_STATUS ? error.data[1] : undefined });
  player.addEventListener("error", (event) => fail(event.detail));
  (async () => {
    await player.attach(video);
    await player.load(url);
    const texts = player.getTextTracks();
    if (texts.length) player.selectTextTrack(texts[0]); // Shaka 5: selected means shown
  })().catch(fail);
  const heights = () => [...new Set(player.getVariantTracks().map((t) => t.height))];
  return {
    renditions: heights,
    select(height) {
      const track = player.getVariantTracks().find((t) => t.height === height);
      if (track) player.selectVariantTrack(track, true);
    },
    textTracks: () => player.getTextTracks().map((t) => t.language),
  };
}

const ADAPTERS = { hls: hlsAdapter, dash: dashAdapter, shaka: shakaAdapter };

// --- the run --------------------------------------------------------------------------------

async function run(engine, url, options) {
  const { rate = 2, timeoutMs = 60000, switchPlan = true } = options || {};
  document.getElementById("title").textContent = `${engine}: ${url.split("?")[0]}`;
  const stage = document.getElementById("stage");
  stage.replaceChildren();
  const video = document.createElement("video");
  video.muted = true;
  video.controls = true;
  stage.append(video);
  const result = { engine, errors: [], heights: [], renditions: [], textTracks: [], cues: [],
                   currentTime: 0, ended: false };
  let failure = null;
  const adapter = ADAPTERS[engine](video, url, (error) => {
    failure = failure || error;
    result.errors.push(error);
    log(`error: ${JSON.stringify(error)}`);
  });
  const heights = new Set();
  video.addEventListener("timeupdate", () => {
    if (video.videoHeight) heights.add(video.videoHeight);
  });
  const started = Date.now();
  const elapsed = () => Date.now() - started;

  // Wait for the first frame (or a failure), then play faster than real time.
  while (!failure && video.readyState < 2 && elapsed() < timeoutMs) await sleep(50);
  if (failure) return { ...result, failure };
  if (video.readyState < 2) return { ...result, failure: { fatal: "no first frame" } };
  result.renditions = adapter.renditions();
  const ladder = [...result.renditions].filter(Boolean).sort((a, b) => a - b);
  if (switchPlan && ladder.length) adapter.select(ladder[0]);
  video.playbackRate = rate;
  await video.play();
  // Switch up to the top rendition after a third of the clip, down to the middle after two.
  const steps = switchPlan ? [[video.duration / 3, ladder[ladder.length - 1]],
                              [(2 * video.duration) / 3, ladder[Math.floor(ladder.length / 2)]]]
                           : [];
  while (!video.ended && !failure && elapsed() < timeoutMs) {
    if (steps.length && video.currentTime >= steps[0][0]) {
      const [, height] = steps.shift();
      log(`t=${video.currentTime.toFixed(2)} switch to ${height}p`);
      adapter.select(height);
    }
    if (video.paused && !video.ended && video.readyState >= 3) await video.play();
    await sleep(100);
  }
  result.currentTime = video.currentTime;
  result.duration = video.duration;
  result.ended = video.ended;
  result.heights = [...heights].sort((a, b) => a - b);
  result.textTracks = adapter.textTracks();
  for (const track of video.textTracks) {
    for (const cue of track.cues || []) {
      result.cues.push({ kind: track.kind, language: track.language, text: cue.text,
                         start: cue.startTime, end: cue.endTime });
    }
  }
  if (failure) result.failure = failure;
  return result;
}

// A web app reading the JSON API with a bearer token: a preflighted cross-origin call.
async function apiGet(url, token) {
  try {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    return { status: response.status, requestId: response.headers.get("X-Request-ID"),
             body: await response.json() };
  } catch (error) {
    return { blocked: String(error) };
  }
}

window.run = run;
window.apiGet = apiGet;
