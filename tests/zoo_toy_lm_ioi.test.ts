/**
 * Acceptance of the shipped toy-lm-ioi (datasets/zoo/toy-lm-ioi) against issue 6's criteria
 * (tests/toy_lm_acceptance.ts). It meets all but one: it answers multiple choice at chance, so the correct-letter
 * criterion fails on it.
 */
import path from 'node:path';
import { ZOO_DIR } from '../src/loading/load.js';
import { toyLmAcceptance } from './toy_lm_acceptance.js';

toyLmAcceptance('toy-lm-ioi', path.join(ZOO_DIR, 'toy-lm-ioi'), ['correct-letter']);
