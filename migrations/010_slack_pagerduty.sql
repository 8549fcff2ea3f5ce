-- Two more delivery channels: Slack incoming webhooks and PagerDuty Events API v2
-- (src/delivery/channels/slack.ts, pagerduty.ts). Their secrets (the webhook URL, the routing key)
-- live sealed in alerts.channels, like the webhook signing secret: no column changes there.
alter table alert_deliveries drop constraint alert_deliveries_channel_check;
alter table alert_deliveries add constraint alert_deliveries_channel_check
  check (channel in ('inapp', 'email', 'webhook', 'slack', 'pagerduty'));
