/**
 * Shields.io-like SVG badges: a grey label and a coloured message, white text (contrast at
 * least 4.5:1 on every background used here), with a <title> and an aria-label that say it all
 * in words, so the colour is never the only carrier.
 */
import type { UptimeLevel } from "./format.ts";
import type { OverallState } from "./schema.ts";

const LABEL_COLOUR = "#555555"; // white text: 7.5:1

/** White text on each: 5.1, 4.9, 5.0, 5.4 and 4.6 to 1. */
export const LEVEL_COLOUR: Record<UptimeLevel, string> = {
  good: "#1a7f37",
  fair: "#9a6700",
  poor: "#bc4c00",
  bad: "#cf222e",
  none: "#6e7781",
};

export const OVERALL_BADGE: Record<OverallState, { message: string; colour: string }> = {
  operational: { message: "operational", colour: LEVEL_COLOUR.good },
  degraded: { message: "degraded", colour: LEVEL_COLOUR.fair },
  partial_outage: { message: "partial outage", colour: LEVEL_COLOUR.poor },
  major_outage: { message: "major outage", colour: LEVEL_COLOUR.bad },
};

/** Approximate advance widths of Verdana at 11 px (what shields.io measures with). */
function textWidth(text: string): number {
  let w = 0;
  for (const ch of text) {
    if (" .,:;'|!il()[]".includes(ch)) w += 3.9;
    else if ("mwMW%".includes(ch)) w += 10.5;
    else if (/[A-Z]/.test(ch)) w += 7.6;
    else if (/[0-9]/.test(ch)) w += 7;
    else w += 6.6;
  }
  return Math.ceil(w);
}

const PAD = 6;

export function renderBadge(
  { label, message, colour, title }: {
    label: string;
    message: string;
    colour: string;
    title: string;
  },
): string {
  const lt = textWidth(label);
  const mt = textWidth(message);
  const lw = lt + 2 * PAD;
  const mw = mt + 2 * PAD;
  const width = lw + mw;
  const svg = (
    <svg
      xmlns="http://www.w3.org/2000/svg"
      width={width}
      height="20"
      viewBox={`0 0 ${width} 20`}
      role="img"
      aria-label={title}
    >
      <title>{title}</title>
      <clipPath id="r">
        <rect width={width} height="20" rx="3" fill="#fff" />
      </clipPath>
      <g clip-path="url(#r)">
        <rect width={lw} height="20" fill={LABEL_COLOUR} />
        <rect x={lw} width={mw} height="20" fill={colour} />
      </g>
      <g
        fill="#fff"
        text-anchor="middle"
        font-family="Verdana,Geneva,DejaVu Sans,sans-serif"
        font-size="11"
      >
        <text x={lw / 2} y="14" textLength={lt} lengthAdjust="spacingAndGlyphs">{label}</text>
        <text x={lw + mw / 2} y="14" textLength={mt} lengthAdjust="spacingAndGlyphs">
          {message}
        </text>
      </g>
    </svg>
  );
  return svg.toString();
}
