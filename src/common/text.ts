import { ValidateBy, ValidationArguments, ValidationOptions } from 'class-validator';

const NUL = '\u0000';
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why PostgreSQL cannot store a string as given, or null. A text column refuses U+0000 (the statement fails: a
 * 500, and in a bulk insert the whole request), and an unpaired surrogate (JSON "\ud800") would be stored as
 * U+FFFD, a silently changed value.
 */
export function unstorableTextProblem(value: string): string | null {
  if (value.includes(NUL)) return 'must not contain the NUL character (U+0000)';
  if (UNPAIRED_SURROGATE.test(value)) return 'must be well-formed Unicode (it has an unpaired surrogate)';
  return null;
}

/** A string the database stores exactly as sent (see unstorableTextProblem); other types are left to IsString. */
export function IsStorableText(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isStorableText',
      validator: {
        validate: (value: unknown) => typeof value !== 'string' || unstorableTextProblem(value) === null,
        defaultMessage: (args?: ValidationArguments) =>
          `${args?.property ?? 'value'} ${unstorableTextProblem(String(args?.value)) ?? 'cannot be stored'}`,
      },
    },
    options,
  );
}
