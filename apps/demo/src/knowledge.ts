import { createHash } from 'node:crypto';

/**
 * The support bot's world, written for this demo: two tenants (companies running the same
 * white-label support bot for a project-management product) and the FAQ intents their users ask.
 *
 * The simulated provider answers from these facts, so every answer can be traced back to the
 * intent, tenant and price-list generation it was written for: that is the ground truth the
 * run checks every served answer against.
 */

export interface TenantFacts {
  readonly id: string;
  readonly company: string;
  /** OpenAI project header the tenant's client sends (the simulated provider keys its knowledge on it). */
  readonly project: string;
  readonly supportHours: string;
  readonly dataRegion: string;
  readonly uploadLimitMb: number;
  readonly refundDays: number;
  /** Price lists by generation: the mid-run "pricing changed" event moves a tenant to the next one. */
  readonly prices: readonly PriceList[];
}

export interface PriceList {
  readonly proMonthly: number;
  readonly teamMonthly: number;
  /** Discount for paying yearly, percent. */
  readonly annualDiscount: number;
  readonly seatPrice: number;
  readonly nonprofitDiscount: number;
  readonly studentDiscount: number;
}

export const TENANTS: readonly TenantFacts[] = [
  {
    id: 'acme',
    company: 'Acme Boards',
    project: 'proj_acme',
    supportHours: 'Monday to Friday, 08:00 to 18:00 CET',
    dataRegion: 'Frankfurt (EU)',
    uploadLimitMb: 250,
    refundDays: 14,
    prices: [
      { proMonthly: 12, teamMonthly: 29, annualDiscount: 15, seatPrice: 6, nonprofitDiscount: 40, studentDiscount: 50 },
      { proMonthly: 15, teamMonthly: 34, annualDiscount: 20, seatPrice: 7, nonprofitDiscount: 40, studentDiscount: 50 },
    ],
  },
  {
    id: 'globex',
    company: 'Globex Planner',
    project: 'proj_globex',
    supportHours: 'every day, 07:00 to 22:00 US Eastern',
    dataRegion: 'Virginia (US)',
    uploadLimitMb: 100,
    refundDays: 30,
    prices: [
      { proMonthly: 10, teamMonthly: 24, annualDiscount: 10, seatPrice: 5, nonprofitDiscount: 30, studentDiscount: 35 },
      { proMonthly: 11, teamMonthly: 26, annualDiscount: 12, seatPrice: 5.5, nonprofitDiscount: 30, studentDiscount: 35 },
    ],
  },
];

export function tenantById(id: string): TenantFacts | undefined {
  return TENANTS.find((t) => t.id === id);
}

/** OpenAI project id a tenant's client sends: `proj_<tenant>`. */
export function projectOf(tenant: string): string {
  return 'proj_' + tenant;
}

/**
 * Facts for the tenant named by a project header. Tenants outside the demo's two (a replayed
 * workload's) get neutral facts under their own id, so answers still say whose they are.
 */
export function tenantByProject(project: string | undefined): TenantFacts {
  const id = project?.startsWith('proj_') ? project.slice(5) : project || 'default';
  return TENANTS.find((t) => t.id === id) ?? { ...TENANTS[0]!, id, company: `${id} (replayed tenant)`, project: projectOf(id) };
}

export interface Intent {
  readonly id: string;
  /** Answers that quote prices: tagged `topic:pricing`, purged by the pricing event. */
  readonly pricing: boolean;
  /** Ways users ask it; the first is the most common wording. */
  readonly phrasings: readonly string[];
  /** Intents a plain embedding would confuse with this one (numbers, negation, entities, opposite actions). */
  readonly lookalikes?: readonly string[];
  answer(t: TenantFacts, p: PriceList): string;
}

const usd = (n: number) => `$${Number.isInteger(n) ? n : n.toFixed(2)}`;

/** In popularity order: the demo draws intents with Zipf-like weights by this rank. */
export const INTENTS: readonly Intent[] = [
  {
    id: 'reset-password',
    pricing: false,
    phrasings: [
      'How do I reset my password?',
      'I forgot my password, how can I get back into my account?',
      'What are the steps to reset a forgotten password?',
      "I can't remember my password. How do I change it?",
      'How can I reset my password?',
    ],
    answer: (t) => `Open the ${t.company} sign-in page, choose "Forgot password", and follow the link we email you; it is valid for 30 minutes.`,
  },
  {
    id: 'pricing-pro-monthly',
    pricing: true,
    phrasings: [
      'How much does the Pro plan cost per month?',
      'What is the monthly price of the Pro plan?',
      "What's the price of Pro per month?",
      'How much is the Pro plan each month?',
    ],
    lookalikes: ['pricing-team-monthly'],
    answer: (t, p) => `The ${t.company} Pro plan costs ${usd(p.proMonthly)} per user per month when billed monthly.`,
  },
  {
    id: 'cancel-subscription',
    pricing: false,
    phrasings: [
      'How do I cancel my subscription?',
      'I want to cancel my subscription, how do I do that?',
      'How can I stop my subscription?',
      'What do I need to do to cancel my plan?',
    ],
    answer: (t) => `In ${t.company}, go to Settings → Billing → Cancel subscription. You keep access until the end of the paid period.`,
  },
  {
    id: 'export-csv',
    pricing: false,
    phrasings: ['How do I export my projects to CSV?', 'Can I export my project data as a CSV file?', 'How can I download my projects as CSV?'],
    lookalikes: ['import-csv'],
    answer: (t) => `Open a project in ${t.company}, click ⋯ → Export → CSV. Exports include tasks, assignees and due dates.`,
  },
  {
    id: 'pricing-team-monthly',
    pricing: true,
    phrasings: ['How much does the Team plan cost per month?', 'What is the monthly price of the Team plan?', "What's the price of Team per month?"],
    lookalikes: ['pricing-pro-monthly'],
    answer: (t, p) => `The ${t.company} Team plan costs ${usd(p.teamMonthly)} per user per month when billed monthly, with admin controls and SSO.`,
  },
  {
    id: 'support-hours',
    pricing: false,
    phrasings: ['What are your support hours?', 'When is customer support available?', 'At what times can I reach your support team?'],
    answer: (t) => `${t.company} support is available ${t.supportHours}.`,
  },
  {
    id: 'integrate-slack',
    pricing: false,
    phrasings: ['Do you integrate with Slack?', 'Is there a Slack integration?', 'Can I connect my workspace to Slack?'],
    lookalikes: ['integrate-teams', 'integrate-jira'],
    answer: (t) => `Yes: ${t.company} posts task updates to Slack channels. Connect it under Settings → Integrations → Slack.`,
  },
  {
    id: 'refund-within',
    pricing: false,
    phrasings: [
      'Can I get a refund within 14 days of buying?',
      'Is a refund possible within 14 days of purchase?',
      'Do you refund me if I ask within 14 days of buying?',
    ],
    lookalikes: ['refund-after'],
    answer: (t) => `Yes. ${t.company} refunds any payment in full if you ask within ${t.refundDays} days of purchase.`,
  },
  {
    id: 'import-csv',
    pricing: false,
    phrasings: ['How do I import my projects from CSV?', 'Can I import project data from a CSV file?', 'How can I upload my projects from a CSV?'],
    lookalikes: ['export-csv'],
    answer: (t) => `In ${t.company}, choose New project → Import → CSV and map the columns; up to 10,000 rows per file.`,
  },
  {
    id: 'pricing-pro-annual',
    pricing: true,
    phrasings: ['How much does the Pro plan cost per year?', 'What is the annual price of the Pro plan?', "What's the price of Pro if I pay yearly?"],
    lookalikes: ['pricing-pro-monthly'],
    answer: (t, p) =>
      `Paid yearly, the ${t.company} Pro plan costs ${usd(Math.round(p.proMonthly * 12 * (1 - p.annualDiscount / 100)))} per user per year (${p.annualDiscount}% off).`,
  },
  {
    id: 'enable-2fa',
    pricing: false,
    phrasings: ['How do I enable two-factor authentication?', 'How can I turn on 2FA for my account?', 'Where do I switch on two-factor authentication?'],
    lookalikes: ['disable-2fa'],
    answer: (t) => `In ${t.company}, open Profile → Security → Two-factor authentication → Enable, then scan the QR code with your authenticator app.`,
  },
  {
    id: 'integrate-teams',
    pricing: false,
    phrasings: ['Do you integrate with Microsoft Teams?', 'Is there a Microsoft Teams integration?', 'Can I connect my workspace to Microsoft Teams?'],
    lookalikes: ['integrate-slack', 'integrate-jira'],
    answer: (t) => `Yes: ${t.company} has a Microsoft Teams app that posts task updates and lets you create tasks from chats.`,
  },
  {
    id: 'seats-5',
    pricing: true,
    phrasings: ['How much do 5 extra seats cost?', 'What is the price of adding 5 more seats?', 'How much would it cost to add 5 seats?'],
    lookalikes: ['seats-50'],
    answer: (t, p) => `Adding 5 seats to ${t.company} costs ${usd(5 * p.seatPrice)} per month (${usd(p.seatPrice)} per seat).`,
  },
  {
    id: 'archive-project',
    pricing: false,
    phrasings: ['How do I archive a project?', 'How can I archive an old project?', 'What is the way to archive a project?'],
    lookalikes: ['unarchive-project'],
    answer: (t) => `In ${t.company}, open the project, click ⋯ → Archive. Archived projects are read-only and hidden from the sidebar.`,
  },
  {
    id: 'data-region',
    pricing: false,
    phrasings: ['Where is my data stored?', 'In which region do you host my data?', 'Which country are your servers in?'],
    answer: (t) => `${t.company} stores all customer data in ${t.dataRegion}, encrypted at rest.`,
  },
  {
    id: 'free-plan-api',
    pricing: false,
    phrasings: ['Does the Free plan include API access?', 'Can I use the API on the Free plan?', 'Is the API available on the Free plan?'],
    lookalikes: ['free-plan-no-api'],
    answer: (t) => `Yes, the ${t.company} Free plan includes the API, limited to 100 requests per hour.`,
  },
  {
    id: 'unarchive-project',
    pricing: false,
    phrasings: ['How do I unarchive a project?', 'How can I restore an archived project?', 'What is the way to unarchive a project?'],
    lookalikes: ['archive-project'],
    answer: (t) => `In ${t.company}, open Archived projects in the sidebar footer, pick the project and click Restore.`,
  },
  {
    id: 'seats-50',
    pricing: true,
    phrasings: ['How much do 50 extra seats cost?', 'What is the price of adding 50 more seats?', 'How much would it cost to add 50 seats?'],
    lookalikes: ['seats-5'],
    answer: (t, p) =>
      `Adding 50 seats to ${t.company} costs ${usd(50 * p.seatPrice * 0.9)} per month: ${usd(p.seatPrice)} per seat with 10% off from 25 seats up.`,
  },
  {
    id: 'refund-after',
    pricing: false,
    phrasings: [
      'Can I get a refund after 60 days of buying?',
      'Is a refund possible after 60 days of purchase?',
      'Do you refund me if I ask after 60 days of buying?',
    ],
    lookalikes: ['refund-within'],
    answer: (t) => `After ${t.refundDays} days ${t.company} does not refund the current period, but you can cancel so the next one is not charged.`,
  },
  {
    id: 'upload-limit',
    pricing: false,
    phrasings: ['What is the maximum file upload size?', 'How large can an attachment be?', "What's the file size limit for uploads?"],
    answer: (t) => `${t.company} accepts attachments up to ${t.uploadLimitMb} MB each.`,
  },
  {
    id: 'disable-2fa',
    pricing: false,
    phrasings: ['How do I disable two-factor authentication?', 'How can I turn off 2FA for my account?', 'Where do I switch off two-factor authentication?'],
    lookalikes: ['enable-2fa'],
    answer: (t) => `In ${t.company}, open Profile → Security → Two-factor authentication → Disable; you must confirm with a current code.`,
  },
  {
    id: 'discount-nonprofit',
    pricing: true,
    phrasings: ['Do you offer a discount for nonprofits?', 'Is there a nonprofit discount on the price?', 'Can a charity get a discount?'],
    lookalikes: ['discount-student'],
    answer: (t, p) => `Yes: registered nonprofits get ${p.nonprofitDiscount}% off any ${t.company} plan; write to billing with your registration number.`,
  },
  {
    id: 'integrate-jira',
    pricing: false,
    phrasings: ['Do you integrate with Jira?', 'Is there a Jira integration?', 'Can I connect my workspace to Jira?'],
    lookalikes: ['integrate-slack', 'integrate-teams'],
    answer: (t) => `Yes: ${t.company} syncs issues both ways with Jira Cloud; set it up under Settings → Integrations → Jira.`,
  },
  {
    id: 'free-plan-no-api',
    pricing: false,
    phrasings: ["Why doesn't the Free plan include API access?", "Why can't I use the API on the Free plan?"],
    lookalikes: ['free-plan-api'],
    answer: (t) => `It does: the ${t.company} Free plan includes the API at 100 requests per hour. If you see 403 errors, create a personal API token first.`,
  },
  {
    id: 'discount-student',
    pricing: true,
    phrasings: ['Do you offer a discount for students?', 'Is there a student discount on the price?', 'Can a student get a discount?'],
    lookalikes: ['discount-nonprofit'],
    answer: (t, p) => `Yes: students get ${p.studentDiscount}% off the ${t.company} Pro plan with a valid university email.`,
  },
  {
    id: 'pricing-team-annual',
    pricing: true,
    phrasings: ['How much does the Team plan cost per year?', 'What is the annual price of the Team plan?'],
    lookalikes: ['pricing-pro-annual'],
    answer: (t, p) =>
      `Paid yearly, the ${t.company} Team plan costs ${usd(Math.round(p.teamMonthly * 12 * (1 - p.annualDiscount / 100)))} per user per year (${p.annualDiscount}% off).`,
  },
];

/**
 * Follow-up turns of multi-turn conversations. The same words mean different things after
 * different first questions, so they resolve through the previous intent.
 */
export interface FollowUp {
  readonly phrasings: readonly string[];
  /** previous intent → this turn's intent */
  readonly resolves: Readonly<Record<string, string>>;
}

export const FOLLOW_UPS: readonly FollowUp[] = [
  {
    phrasings: ['And how much is it if I pay yearly?', 'What about the price if I pay annually?'],
    resolves: { 'pricing-pro-monthly': 'pricing-pro-annual', 'pricing-team-monthly': 'pricing-team-annual' },
  },
  {
    phrasings: ['And how do I undo that?', 'How do I reverse that later?'],
    resolves: { 'archive-project': 'unarchive-project', 'enable-2fa': 'disable-2fa' },
  },
];

/** Id of a question outside the FAQ: one per distinct wording. */
export function questionId(text: string): string {
  return 'q-' + createHash('sha256').update(text.trim().toLowerCase()).digest('hex').slice(0, 10);
}

export function intentById(id: string): Intent | undefined {
  return INTENTS.find((i) => i.id === id);
}

/** Lower-case, drop punctuation and the small talk users wrap questions in. */
export function normalizeQuestion(text: string): string {
  return text
    .toLowerCase()
    .replace(/[’']/g, "'")
    .replace(/[?!.,:;]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^(hi|hello|hey)( there)? /, '')
    .replace(/^(sorry|quick question|please help) /, '')
    .replace(/ (thanks|thank you|please)$/, '');
}

const byText = new Map<string, string>();
for (const intent of INTENTS) for (const p of intent.phrasings) byText.set(normalizeQuestion(p), intent.id);
const followUpByText = new Map<string, FollowUp>();
for (const f of FOLLOW_UPS) for (const p of f.phrasings) followUpByText.set(normalizeQuestion(p), f);

/**
 * What a conversation's last user turn asks, or undefined for a question outside the FAQ.
 * `previousUserTurns` are the earlier user turns, oldest first.
 */
export function classify(text: string, previousUserTurns: readonly string[] = []): string | undefined {
  const n = normalizeQuestion(text);
  const direct = byText.get(n);
  if (direct) return direct;
  const follow = followUpByText.get(n);
  if (follow && previousUserTurns.length > 0) {
    const prev = classify(previousUserTurns[previousUserTurns.length - 1]!, previousUserTurns.slice(0, -1));
    return prev ? follow.resolves[prev] : undefined;
  }
  return undefined;
}

const POLICY_LINES: readonly string[] = [
  'Billing: confirm which plan the user is on before suggesting changes, and link the billing page (Settings → Billing) rather than describing card details.',
  'Security: never ask for passwords, one-time codes or full card numbers; if a user pastes one, tell them to rotate it and continue without repeating it.',
  'Data: for export, import and deletion questions, give the exact menu path and mention that workspace admins can do the same for the whole workspace.',
  'Integrations: if the user asks for an integration we do not offer, say so plainly and point to the public API and webhooks instead of promising features.',
  'Outages: point to the status page, apologise once, and do not speculate about causes or timelines that the status page does not state.',
  'Refunds: state the refund window that applies to the account, and hand over to a human agent for anything outside it; never promise an exception.',
  'Accounts: a workspace has one owner; ownership can be transferred by the owner only, from Settings → Members → Transfer ownership.',
  'Plans: Free, Pro and Team differ in seats, storage, automation runs and admin controls; quote only the figures from the account knowledge base.',
  'Seats: extra seats are billed pro rata from the day they are added; removing a seat takes effect at the next renewal, not immediately.',
  'Taxes: prices are quoted before VAT or sales tax; the checkout page shows tax for the billing country, and invoices show the tax number if one is set.',
  'Invoices: every payment produces an invoice under Settings → Billing → Invoices; invoices can be re-issued with a different company name within 30 days.',
  'Privacy: we never sell customer data; the data processing agreement is signed electronically from Settings → Legal, and sub-processors are listed there too.',
  'Mobile: the iOS and Android apps support tasks, comments and notifications; board automation and admin settings are available on the web app only.',
  'Automation: rules run on triggers (task created, status changed, due date reached); each plan has a monthly quota of automation runs shown in Settings → Usage.',
  'Escalation: when the user is angry or the issue blocks their team, offer a human agent and summarise the conversation for them in three short bullet points.',
  'Accessibility: the web app supports keyboard navigation and screen readers; report accessibility bugs with the browser and assistive technology version.',
  'Language: answer in the language of the question; product names, menu paths and plan names stay in English as they appear in the interface.',
  'Style: be concise and friendly, no marketing language, no emoji; use the menu path format Settings → Section → Item exactly as written in this prompt.',
  'Unknowns: if the knowledge base does not contain the answer, say that you do not know and offer a human agent; never guess numbers or dates.',
  'Time: do not state the current date, time or any live status yourself; direct users to the status page or their account pages for anything that changes.',
  'API: personal API tokens are created under Profile → API tokens; tokens inherit the permissions of their owner and can be revoked at any time.',
  'SSO: single sign-on with SAML or OIDC is part of the Team plan; setup needs a workspace admin and a verified email domain.',
  'Deletion: deleting a workspace is permanent after a 14-day grace period during which the owner can restore it from the confirmation email.',
  'Guests: guests can view and comment on shared projects but cannot create projects; guests do not count as paid seats on any plan.',
  'Storage: attachments count towards the workspace storage quota; deleted files stay in the trash for 30 days and still count until the trash is emptied.',
  'Notifications: users choose email, push or in-app notifications per project under Profile → Notifications; admins cannot override personal choices.',
  'Templates: project templates copy structure, custom fields and automation rules, never tasks content or attachments; templates are shared workspace-wide.',
  'Calendar: two-way calendar sync supports Google Calendar and Outlook; only tasks with a due date appear, and changes sync within five minutes.',
  'Time tracking: time entries can be added on tasks by any member; reports by project and member are exported from Reports → Time as CSV.',
  'Feedback: thank users for feature requests and log them with the tag feature-request; do not promise delivery dates for unreleased features.',
];

/** The bot's system prompt: the same for both tenants (one white-label bot), long enough (> 1,024 tokens) for provider prompt caching. */
export const SYSTEM_PROMPT = [
  'You are the customer support assistant of a project-management product. Answer in one or two sentences,',
  'quote exact figures from the account knowledge base, and never invent prices, limits or dates.',
  'Follow these rules:',
  ...POLICY_LINES,
].join('\n');
