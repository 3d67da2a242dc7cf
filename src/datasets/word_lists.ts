/**
 * Word lists for the text data sets, written for headlens (common English first names, places, objects,
 * categories for multiple-choice questions). Which of them are single tokens depends on the tokenizer:
 * `singleTokenWords` (ioi.ts) checks.
 */
export const FIRST_NAMES = [
  'Mary', 'John', 'James', 'Anna', 'Robert', 'Sarah', 'Michael', 'Laura', 'David', 'Emma', 'Daniel', 'Lisa',
  'Paul', 'Kate', 'Mark', 'Alice', 'Peter', 'Helen', 'George', 'Susan', 'Thomas', 'Rachel', 'Steven', 'Grace',
  'Kevin', 'Amy', 'Brian', 'Julia', 'Eric', 'Linda', 'Adam', 'Karen', 'Simon', 'Jane', 'Frank', 'Ruth',
  'Henry', 'Claire', 'Jack', 'Rose',
] as const;

export const PLACES = [
  'store', 'park', 'school', 'station', 'garden', 'library', 'market', 'hospital', 'office', 'beach',
  'restaurant', 'museum', 'church', 'house', 'airport',
] as const;

export const OBJECTS = [
  'drink', 'book', 'ring', 'kiss', 'letter', 'bone', 'basketball', 'computer', 'snack', 'necklace',
  'ticket', 'bottle', 'card', 'key', 'bag',
] as const;

/** Categories with members for content-determined multiple-choice questions. */
export const CATEGORIES: Record<string, { question: string; members: readonly string[] }> = {
  colour: { question: 'Which of these is a colour?', members: ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'brown', 'grey'] },
  animal: { question: 'Which of these is an animal?', members: ['dog', 'horse', 'rabbit', 'tiger', 'sheep', 'mouse', 'eagle', 'whale'] },
  fruit: { question: 'Which of these is a fruit?', members: ['apple', 'banana', 'cherry', 'grape', 'lemon', 'peach', 'plum', 'mango'] },
  instrument: { question: 'Which of these is a musical instrument?', members: ['piano', 'violin', 'guitar', 'drum', 'flute', 'trumpet', 'cello', 'harp'] },
  country: { question: 'Which of these is a country?', members: ['France', 'Japan', 'Brazil', 'Canada', 'Egypt', 'India', 'Spain', 'Kenya'] },
  number: { question: 'Which of these is a number?', members: ['seven', 'twelve', 'three', 'forty', 'nine', 'hundred', 'five', 'eight'] },
};
