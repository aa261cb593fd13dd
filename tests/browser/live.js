// Drives tests/browser/live.html in Chromium (playwright-core) against a running API: the page
// (bayko) receives a message another user posts, closes its stream, and reopens it on a new ticket
// with its last id after two more were posted meanwhile; then the sender edits the first message
// and deletes the last one, and the page receives both changes. Prints what the page received, as JSON.
// Environment: CHROMIUM, PAGE_URL, API_URL, RECEIVER_TOKEN, SENDER_TOKEN, RECEIVER_HANDLE.
const { chromium } = require("playwright-core");

const env = process.env;

async function post(text, extra) {
  const response = await fetch(`${env.API_URL}/api/messages`, {
    method: "POST",
    headers: { Authorization: `Bearer ${env.SENDER_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ message: text, ...extra }),
  });
  if (!response.ok) throw new Error(`post: ${response.status} ${await response.text()}`);
  return response.json();
}

function messagesIn(page) {
  return page.evaluate(() => received.filter((e) => e.event === "message").map((e) => e.data.message));
}

(async () => {
  const browser = await chromium.launch({
    executablePath: env.CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  const problems = [];
  try {
    const page = await (await browser.newContext()).newPage();
    page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
    await page.goto(env.PAGE_URL);
    await page.evaluate(([api, token]) => openStream(api, token), [env.API_URL, env.RECEIVER_TOKEN]);
    const stamp = Date.now();
    const first = await post(`live in the browser ${stamp}`, { handle: env.RECEIVER_HANDLE });
    await page.waitForFunction((text) => received.some((e) => e.event === "message" && e.data.message === text),
                               first.message, { timeout: 15000 });
    await page.evaluate(() => closeStream());
    const away = [`while away 1 ${stamp}`, `while away 2 ${stamp}`];
    const sent = [];
    for (const text of away) sent.push(await post(text, { message_group_uuid: first.message_group_uuid }));
    await page.waitForTimeout(2000);  // logged while no stream is open
    await page.evaluate(([api, token]) => openStream(api, token), [env.API_URL, env.RECEIVER_TOKEN]);
    await page.waitForFunction((texts) => texts.every((t) => received.some((e) => e.data.message === t && e.event === "message")),
                               away, { timeout: 15000 });
    // the sender corrects their last message: the page receives the change live
    const edited = `${first.message} (edited)`;
    const patched = await fetch(`${env.API_URL}/api/messages/${first.message_group_uuid}/${first.uuid}`, {
      method: "PATCH",
      headers: { Authorization: `Bearer ${env.SENDER_TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ message: edited }),
    });
    if (!patched.ok) throw new Error(`patch: ${patched.status} ${await patched.text()}`);
    await page.waitForFunction((text) => received.some((e) => e.event === "message_changed" && e.data.message === text),
                               edited, { timeout: 15000 });
    // the sender takes their last message back: the page learns it live
    const gone = sent[sent.length - 1];
    const deleted = await fetch(`${env.API_URL}/api/messages/${first.message_group_uuid}/${gone.uuid}`, {
      method: "DELETE",
      headers: { Authorization: `Bearer ${env.SENDER_TOKEN}` },
    });
    if (!deleted.ok) throw new Error(`delete: ${deleted.status} ${await deleted.text()}`);
    await page.waitForFunction((uuid) => received.some((e) => e.event === "message_deleted" && e.data.uuid === uuid),
                               gone.uuid, { timeout: 15000 });
    await page.waitForTimeout(2000);  // anything more (a duplicate) would arrive by now
    const received = await page.evaluate(() => received);
    console.log(JSON.stringify({ first: first.message, away, edited, deleted: await deleted.json(), received, problems }));
  } finally {
    await browser.close();
  }
})().catch((error) => { console.error(error); process.exit(1); });
