/**
 * Acceptance of the shipped toy-lm (datasets/zoo/toy-lm) against issue 6's criteria (tests/toy_lm_acceptance.ts).
 * It meets all but one: no head is classed a name mover (its IOI goes through a head that suppresses the
 * subject). TOY_LM_DIR points the file at another trained folder.
 */
import path from 'node:path';
import { ZOO_DIR } from '../src/loading/load.js';
import { toyLmAcceptance } from './toy_lm_acceptance.js';

toyLmAcceptance('toy-lm', process.env.TOY_LM_DIR ?? path.join(ZOO_DIR, 'toy-lm'), ['ioi-movers']);
