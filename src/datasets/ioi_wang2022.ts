/**
 * The IOI data set's word lists as Wang et al. 2022 used them ("Interpretability in the Wild"; their code,
 * redwoodresearch/Easy-Transformer, easy_transformer/ioi_dataset.py at commit ea15315: NAMES, BABA_TEMPLATES,
 * PLACES, OBJECTS). These are facts about their data set, written here in headlens' template form: [A] and [B]
 * are the two names as introduced, [S] the repeated subject, and the text stops before the indirect object
 * (their templates end in "… to [A]"). Their ABBA templates are the same 15 with the first clause's names swapped,
 * which is what `order` does in ioi.ts.
 * The paper speaks of 100 names; the list in their code holds 99 distinct names, and that list is what is here.
 * Which of them are single tokens depends on the tokenizer (GPT-2's keeps them whole); ioi.ts checks.
 */
export const WANG2022_TEMPLATES = [
  'Then, [A] and [B] went to the [PLACE]. [S] gave a [OBJECT] to',
  'Then, [A] and [B] had a lot of fun at the [PLACE]. [S] gave a [OBJECT] to',
  'Then, [A] and [B] were working at the [PLACE]. [S] decided to give a [OBJECT] to',
  'Then, [A] and [B] were thinking about going to the [PLACE]. [S] wanted to give a [OBJECT] to',
  'Then, [A] and [B] had a long argument, and afterwards [S] said to',
  'After [A] and [B] went to the [PLACE], [S] gave a [OBJECT] to',
  'When [A] and [B] got a [OBJECT] at the [PLACE], [S] decided to give it to',
  'When [A] and [B] got a [OBJECT] at the [PLACE], [S] decided to give the [OBJECT] to',
  'While [A] and [B] were working at the [PLACE], [S] gave a [OBJECT] to',
  'While [A] and [B] were commuting to the [PLACE], [S] gave a [OBJECT] to',
  'After the lunch, [A] and [B] went to the [PLACE]. [S] gave a [OBJECT] to',
  'Afterwards, [A] and [B] went to the [PLACE]. [S] gave a [OBJECT] to',
  'Then, [A] and [B] had a long argument. Afterwards [S] said to',
  'The [PLACE] [A] and [B] went to had a [OBJECT]. [S] gave it to',
  'Friends [A] and [B] found a [OBJECT] at the [PLACE]. [S] gave it to',
] as const;

export const WANG2022_NAMES = [
  'Michael', 'Christopher', 'Jessica', 'Matthew', 'Ashley', 'Jennifer', 'Joshua', 'Amanda', 'Daniel', 'David',
  'James', 'Robert', 'John', 'Joseph', 'Andrew', 'Ryan', 'Brandon', 'Jason', 'Justin', 'Sarah', 'William',
  'Jonathan', 'Stephanie', 'Brian', 'Nicole', 'Nicholas', 'Anthony', 'Heather', 'Eric', 'Elizabeth', 'Adam',
  'Megan', 'Melissa', 'Kevin', 'Steven', 'Thomas', 'Timothy', 'Christina', 'Kyle', 'Rachel', 'Laura', 'Lauren',
  'Amber', 'Brittany', 'Danielle', 'Richard', 'Kimberly', 'Jeffrey', 'Amy', 'Crystal', 'Michelle', 'Tiffany',
  'Jeremy', 'Benjamin', 'Mark', 'Emily', 'Aaron', 'Charles', 'Rebecca', 'Jacob', 'Stephen', 'Patrick', 'Sean',
  'Erin', 'Jamie', 'Kelly', 'Samantha', 'Nathan', 'Sara', 'Dustin', 'Paul', 'Angela', 'Tyler', 'Scott',
  'Katherine', 'Andrea', 'Gregory', 'Erica', 'Mary', 'Travis', 'Lisa', 'Kenneth', 'Bryan', 'Lindsey', 'Kristen',
  'Jose', 'Alexander', 'Jesse', 'Katie', 'Lindsay', 'Shannon', 'Vanessa', 'Courtney', 'Christine', 'Alicia',
  'Cody', 'Allison', 'Bradley', 'Samuel',
] as const;

export const WANG2022_PLACES = ['store', 'garden', 'restaurant', 'school', 'hospital', 'office', 'house', 'station'] as const;
export const WANG2022_OBJECTS = ['ring', 'kiss', 'bone', 'basketball', 'computer', 'necklace', 'drink', 'snack'] as const;
