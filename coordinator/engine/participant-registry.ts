import { TwopcError } from './ports/protocol';
import type { Participant } from './ports/participant';

/** Makes the participant for a branch enlisted with a URL (an HTTP participant service). */
export type UrlParticipantFactory = (name: string, url: string) => Participant;

/**
 * The participants an engine can reach: configured ones by name (direct
 * PostgreSQL databases), and, when a factory is given, participant services
 * by the URL they enlisted with.
 */
export class ParticipantRegistry {
  private readonly byName = new Map<string, Participant>();
  // How a participant is handed out (engine-context.ts wraps it in tracing spans); one wrapper per participant.
  private decorator: (participant: Participant) => Participant = (participant) => participant;
  private readonly decorated = new WeakMap<Participant, Participant>();

  constructor(
    participants: Iterable<Participant> = [],
    private readonly forUrl?: UrlParticipantFactory,
  ) {
    for (const p of participants) this.add(p);
  }

  add(participant: Participant): void {
    if (this.byName.has(participant.name)) {
      throw new TwopcError('invalid-config', `participant ${JSON.stringify(participant.name)} is configured twice`, { field: 'participants' });
    }
    this.byName.set(participant.name, participant);
  }

  /** Hands every participant out through `decorator` from now on. */
  decorate(decorator: (participant: Participant) => Participant): void {
    this.decorator = decorator;
  }

  private handOut(participant: Participant): Participant {
    let out = this.decorated.get(participant);
    if (!out) this.decorated.set(participant, (out = this.decorator(participant)));
    return out;
  }

  /** True when a branch of this participant (with this URL, if any) can be reached. */
  accepts(name: string, url?: string): boolean {
    return url !== undefined ? this.forUrl !== undefined : this.byName.has(name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The participant that holds a branch. Throws `participant-unavailable` if none can (phase 2 retries it). */
  forBranch(branch: { participant: string; url?: string }): Participant {
    if (branch.url !== undefined && this.forUrl) return this.handOut(this.forUrl(branch.participant, branch.url));
    return this.get(branch.participant);
  }

  /** A configured participant by name. */
  get(name: string): Participant {
    const participant = this.byName.get(name);
    if (!participant) throw new TwopcError('participant-unavailable', `participant ${JSON.stringify(name)} is not configured on this coordinator`, { participant: name });
    return this.handOut(participant);
  }

  /** The configured participants (those a sweep can list). */
  all(): Participant[] {
    return [...this.byName.values()].map((participant) => this.handOut(participant));
  }
}
