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

  /** True when a branch of this participant (with this URL, if any) can be reached. */
  accepts(name: string, url?: string): boolean {
    return url !== undefined ? this.forUrl !== undefined : this.byName.has(name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The participant that holds a branch. Throws `participant-unavailable` if none can (phase 2 retries it). */
  forBranch(branch: { participant: string; url?: string }): Participant {
    if (branch.url !== undefined && this.forUrl) return this.forUrl(branch.participant, branch.url);
    return this.get(branch.participant);
  }

  /** A configured participant by name. */
  get(name: string): Participant {
    const participant = this.byName.get(name);
    if (!participant) throw new TwopcError('participant-unavailable', `participant ${JSON.stringify(name)} is not configured on this coordinator`, { participant: name });
    return participant;
  }

  /** The configured participants (those a sweep can list). */
  all(): Participant[] {
    return [...this.byName.values()];
  }
}
