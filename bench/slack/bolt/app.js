'use strict';
// The Bolt side of bench/slack: a minimal Slack Bolt for JavaScript app
// that acknowledges Events API requests and does nothing else. The default
// HTTP receiver verifies the signature and Bolt acks every event on its own;
// the app_mention listener makes no outbound call. The bench starts it as
// `node app.js` with:
//   PORT                  port to listen on (HOST, default 127.0.0.1)
//   SLACK_SIGNING_SECRET  the bench's signing secret
//   SLACK_API_URL         optional: Web API base URL (the bench's stub), so a
//                         call Bolt might make never leaves the machine
const { App, HTTPReceiver, LogLevel } = require('@slack/bolt');

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';
const signingSecret = process.env.SLACK_SIGNING_SECRET;
if (!signingSecret) {
  console.error('bolt: set SLACK_SIGNING_SECRET');
  process.exit(2);
}

const receiver = new HTTPReceiver({ signingSecret, endpoints: '/slack/events', logLevel: LogLevel.WARN });
const app = new App({
  receiver,
  token: 'xoxb-bench',
  // No auth.test at start or on the first event: the bot's ids are given.
  tokenVerificationEnabled: false,
  botId: 'B0BOT',
  botUserId: 'U0BOT',
  logLevel: LogLevel.WARN,
  clientOptions: process.env.SLACK_API_URL ? { slackApiUrl: process.env.SLACK_API_URL } : {},
});

app.event('app_mention', async () => {});

app.error(async (error) => {
  console.error('bolt: listener error:', error);
});

(async () => {
  await app.start({ port, host });
  console.error(`bolt: listening on ${host}:${port}`);
})().catch((error) => {
  console.error('bolt: cannot start:', error);
  process.exit(1);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    setTimeout(() => process.exit(0), 2000).unref();
    app.stop().finally(() => process.exit(0));
  });
}
