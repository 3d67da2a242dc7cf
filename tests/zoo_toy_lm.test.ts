/**
 * Acceptance of the shipped toy-lm (datasets/zoo/toy-lm) against issue 6's criteria (tests/toy_lm_acceptance.ts):
 * retrieval, IOI through name movers, temporal and correct-letter heads, all in the one model. TOY_LM_DIR points
 * the file at another trained folder.
 */
import path from 'node:path';
import { ZOO_DIR } from '../src/loading/load.js';
import { toyLmAcceptance } from './toy_lm_acceptance.js';

toyLmAcceptance('toy-lm', process.env.TOY_LM_DIR ?? path.join(ZOO_DIR, 'toy-lm'));
