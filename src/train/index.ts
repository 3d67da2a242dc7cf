/** headlens/train: training a model (AdamW, warm-up + cosine, clipping, resumable checkpoints), in steps or at once. */
export { train, prepareTraining, trainStep, saveCheckpoint, endTraining, lmLoss, maskedLmLoss, evaluate, type Training, type TrainOptions, type TrainProgress, type TrainResult, type TrainLog, type DataSource, type Batch } from './trainer.js';
export { AdamW, warmupCosine, type AdamWOptions } from './adamw.js';
