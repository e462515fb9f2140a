import { TwopcError } from '../errors';
import type { Participant } from '../participants/participant';

/** The participants an engine can reach, by name. */
export class ParticipantRegistry {
  private readonly byName = new Map<string, Participant>();

  constructor(participants: Iterable<Participant> = []) {
    for (const p of participants) this.add(p);
  }

  add(participant: Participant): void {
    if (this.byName.has(participant.name)) {
      throw new TwopcError('invalid-config', `participant ${JSON.stringify(participant.name)} is configured twice`, { field: 'participants' });
    }
    this.byName.set(participant.name, participant);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Throws `participant-unavailable` for a name this engine was not given (phase 2 retries it). */
  get(name: string): Participant {
    const participant = this.byName.get(name);
    if (!participant) throw new TwopcError('participant-unavailable', `participant ${JSON.stringify(name)} is not configured on this coordinator`, { participant: name });
    return participant;
  }

  all(): Participant[] {
    return [...this.byName.values()];
  }
}
